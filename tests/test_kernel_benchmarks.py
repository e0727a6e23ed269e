"""pytest-benchmark cases for individual kernels, on the arrays of a generated M dataset.

Marked ``benchmark``; the default run passes ``--benchmark-skip``, so run them with
``python -m pytest tests/test_kernel_benchmarks.py --benchmark-only``.

The kernel arguments are the real ones: the engine is run once on the M dataset with each kernel
wrapped (through pytest's ``monkeypatch``, undone afterwards) to record its arguments. Every timed
round gets fresh copies of the arrays (kernels may write into them), made outside the timing; the
first call of each case compiles nothing new because the engine call already did (warm-up).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest

from licensecore.bench.datagen import generate
from licensecore.bench.datagen_bundles import generate_bundles

pytestmark = pytest.mark.benchmark

CONSUMPTION_KERNELS = ("counting_order", "distinct_sorted_pairs", "bind_pairs", "spill_free_pairs")


def _capture(monkeypatch: pytest.MonkeyPatch, module, names: tuple[str, ...],
             run: Callable[[], object]) -> dict[str, tuple[Callable, tuple]]:
    """Run ``run`` with ``module.<name>`` wrapped; return each kernel's largest recorded call."""
    seen: dict[str, tuple[Callable, tuple]] = {}

    def wrap(name: str, kernel: Callable) -> Callable:
        def recording(*args):
            size = sum(a.size for a in args if isinstance(a, np.ndarray))
            if name not in seen or size > seen[name][2]:
                seen[name] = (kernel, copy.deepcopy(args), size)
            return kernel(*args)
        return recording

    with monkeypatch.context() as patch:
        for name in names:
            patch.setattr(module, name, wrap(name, getattr(module, name)))
        run()
    return {name: (kernel, args) for name, (kernel, args, _) in seen.items()}


@pytest.fixture(scope="module")
def consumption_calls() -> dict[str, tuple[Callable, tuple]]:
    from licensecore.kernels import consumption as module
    from licensecore.server.consumption import compute_consumption

    tables = generate("M", 0)
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _capture(monkeypatch, module, CONSUMPTION_KERNELS, lambda: compute_consumption(tables))


@pytest.fixture(scope="module")
def bundle_calls() -> dict[str, tuple[Callable, tuple]]:
    from licensecore.server import bundles as module

    tables = generate_bundles("M", 0)
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _capture(monkeypatch, module, ("resolve_actors",),
                        lambda: module.resolve_bundles(tables))


def _bench(benchmark, kernel: Callable, args: tuple) -> None:
    benchmark.pedantic(kernel, setup=lambda: (copy.deepcopy(args), {}), rounds=10,
                       warmup_rounds=1)


@pytest.mark.parametrize("name", CONSUMPTION_KERNELS)
def test_consumption_kernel(benchmark, consumption_calls, name: str) -> None:
    kernel, args = consumption_calls[name]
    _bench(benchmark, kernel, args)


def test_resolve_actors(benchmark, bundle_calls) -> None:
    kernel, args = bundle_calls["resolve_actors"]
    _bench(benchmark, kernel, args)
