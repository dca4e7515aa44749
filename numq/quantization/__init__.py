"""numq's ``torch.ao.quantization``: observers, fake-quant modules and QConfig.

Submodules mirror torch's: :mod:`.observer`, :mod:`.fake_quantize`, :mod:`.qconfig`,
:mod:`.qconfig_mapping`; their public names are re-exported here.
"""
from . import fake_quantize, observer, qconfig, qconfig_mapping
from .fake_quantize import *  # noqa: F401,F403
from .observer import *  # noqa: F401,F403
from .qconfig import *  # noqa: F401,F403
from .qconfig_mapping import *  # noqa: F401,F403

__all__ = [n for m in (observer, fake_quantize, qconfig, qconfig_mapping) for n in m.__all__]
