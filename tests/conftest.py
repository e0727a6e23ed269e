"""Hypothesis profiles, chosen by the environment variable HYPOTHESIS_PROFILE (default `dev`).

`deadline=None` because the first engine call JIT-compiles its kernels.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

settings.register_profile("dev", max_examples=200, **_COMMON)
settings.register_profile("ci", max_examples=300, print_blob=True, **_COMMON)
settings.register_profile("deep", max_examples=5000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
