"""Fixtures for the quantized layer tests.

``isa_variant`` runs a test once per kernel variant in ``numq._isa.ISA_VARIANTS``: each
variant this CPU (and process) supports runs under ``numq._isa.forced``; the others
are skipped with the reason.
"""
import pytest

from numq import _isa


@pytest.fixture(params=_isa.ISA_VARIANTS)
def isa_variant(request):
    v = request.param
    if v not in _isa.supported_variants():
        pytest.skip(f"kernel variant {v} is not available on this CPU / process")
    with _isa.forced(v):
        yield v
