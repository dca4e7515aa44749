"""Shared test setup: Hypothesis profiles and the tests folder on ``sys.path``.

``HYPOTHESIS_PROFILE=ci`` makes property tests reproducible (derandomized); the default
``dev`` profile only drops the deadline (the first call of a Numba kernel compiles).
"""
import os
import sys

from hypothesis import settings

sys.path.insert(0, os.path.dirname(__file__))  # `import reference` from tests/conformance too

settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
