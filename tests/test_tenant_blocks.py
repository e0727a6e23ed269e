"""Kernels run per block of tenants side by side give exactly the whole-input result."""

from __future__ import annotations

import numpy as np
from hypothesis import given, note
from hypothesis import strategies as st

from licensecore.kernels.consumption import compute
from licensecore.server import consumption
from licensecore.server.schema import CONSUMPTION_INPUTS
from licensecore.server.tables import normalize_tables
from strategies import consumption_inputs, describe


@given(consumption_inputs(min_tenants=1, max_tenants=4), st.integers(2, 5))
def test_tenant_blocks_equal_one_computation(tables, threads):
    note(describe(tables))
    t, _ = normalize_tables(tables, CONSUMPTION_INPUTS)
    enc = consumption._Encoded(t)
    whole = compute(enc.input)
    blocked = consumption.compute_by_tenant_blocks(enc, enc.input, threads, min_rows=0)
    for field in whole.__dataclass_fields__:
        want, got = getattr(whole, field), getattr(blocked, field)
        assert got.dtype == want.dtype, field
        assert np.array_equal(got, want), field


def test_blocks_split_the_tenants_and_cover_every_row():
    """Four tenants of very unequal size in two threads: several blocks, each row in exactly one."""
    from licensecore.kernels.blocks import tenant_blocks

    bounds = np.array([0, 50, 60, 65, 100])
    install_tenant = np.repeat(np.arange(4), [400, 10, 5, 100])
    blocks = tenant_blocks(bounds, bounds, bounds, install_tenant, install_tenant[::5], install_tenant[::7], 4)
    assert len(blocks) >= 2
    assert blocks[0].party[0] == 0 and blocks[-1].party[1] == 100
    assert all(x.party[1] == y.party[0] for x, y in zip(blocks, blocks[1:]))
    assert sorted(np.concatenate([b.installs for b in blocks]).tolist()) == list(range(install_tenant.size))
    for b in blocks:
        tenants = set(install_tenant[b.installs].tolist())
        assert all(bounds[t] >= b.party[0] and bounds[t + 1] <= b.party[1] for t in tenants)
