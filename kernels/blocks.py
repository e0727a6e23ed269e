"""Consumption by tenant blocks: tenants share nothing, so the work can be split between cores.

Entity codes sort tenant first, so each tenant's parties, applications and licenses are
contiguous code ranges. A block (a contiguous range of tenants) re-based to codes from 0 is a
whole, smaller ``ConsumptionInput``; its result re-based back is exactly that block's part of the
whole result, and the blocks' parts concatenate in block order into the whole result (rows are
ordered by license, licenses tenant first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np

from .consumption import ConsumptionInput, ConsumptionResult
from .sorting import counting_order, csr_offsets


@dataclass(frozen=True)
class Block:
    """Code ranges [start, stop) of one block's parties, applications and licenses, and the
    indices of its installation, license_applications and allocation rows (input order)."""

    party: tuple[int, int]
    app: tuple[int, int]
    license: tuple[int, int]
    installs: np.ndarray
    links: np.ndarray
    allocs: np.ndarray

    @property
    def work(self) -> int:
        """The measure blocks are balanced by: installation rows plus parties."""
        return self.installs.size + self.party[1] - self.party[0]


def tenant_blocks(
    party_bounds: np.ndarray, app_bounds: np.ndarray, license_bounds: np.ndarray,
    install_tenant: np.ndarray, link_tenant: np.ndarray, alloc_tenant: np.ndarray, n_blocks: int,
) -> list[Block]:
    """Contiguous tenant ranges of about equal work (installation rows and parties), at most
    ``n_blocks`` of them; a tenant is never split. ``*_bounds[t]`` is tenant ``t``'s first code
    (``n_tenants + 1`` entries), ``*_tenant`` each row's tenant code."""
    n_tenants = party_bounds.size - 1
    install_rows, install_offsets = _rows_by_tenant(install_tenant, n_tenants)
    link_rows, link_offsets = _rows_by_tenant(link_tenant, n_tenants)
    alloc_rows, alloc_offsets = _rows_by_tenant(alloc_tenant, n_tenants)
    work = np.diff(install_offsets) + np.diff(party_bounds)
    target = work.sum() / max(n_blocks, 1)
    ends = np.searchsorted(np.cumsum(work), target * np.arange(1, n_blocks), side="left") + 1
    cuts = np.unique(np.concatenate([[0], np.minimum(ends, n_tenants), [n_tenants]]))

    def rows(order: np.ndarray, offsets: np.ndarray, a: int, b: int) -> np.ndarray:
        return order[offsets[a]:offsets[b]]

    return [
        Block(
            party=(int(party_bounds[a]), int(party_bounds[b])),
            app=(int(app_bounds[a]), int(app_bounds[b])),
            license=(int(license_bounds[a]), int(license_bounds[b])),
            installs=rows(install_rows, install_offsets, a, b),
            links=rows(link_rows, link_offsets, a, b),
            allocs=rows(alloc_rows, alloc_offsets, a, b),
        )
        for a, b in zip(cuts[:-1], cuts[1:])
    ]


def _rows_by_tenant(tenant: np.ndarray, n_tenants: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ordered by tenant (input order within a tenant), and CSR offsets."""
    order = counting_order(tenant, max(n_tenants, 1), np.arange(tenant.size))
    return order, csr_offsets(tenant[order], n_tenants)


def block_input(x: ConsumptionInput, b: Block) -> ConsumptionInput:
    """The block's part of ``x``, its codes re-based to start from 0."""
    p0, p1 = b.party
    a0, a1 = b.app
    l0, l1 = b.license
    party = slice(p0, p1)
    lic = slice(l0, l1)
    return ConsumptionInput(
        n_party=p1 - p0,
        n_app=a1 - a0,
        install_device=x.install_device[b.installs] - p0,
        install_app=x.install_app[b.installs] - a0,
        device_user=_rebased(x.device_user[party], p0),
        device_host=_rebased(x.device_host[party], p0),
        device_cores=x.device_cores[party],
        user_known=x.user_known[party],
        user_device_count=x.user_device_count[party],
        license_metric=x.license_metric[lic],
        license_entitlements=x.license_entitlements[lic],
        license_multiple_use=x.license_multiple_use[lic],
        license_allocations_consume=x.license_allocations_consume[lic],
        license_vm_host=x.license_vm_host[lic],
        license_priority=x.license_priority[lic],
        license_true_up=x.license_true_up[lic],
        license_points=x.license_points[lic],
        link_license=x.link_license[b.links] - l0,
        link_app=x.link_app[b.links] - a0,
        alloc_license=x.alloc_license[b.allocs] - l0,
        alloc_target=x.alloc_target[b.allocs] - p0,
        alloc_type=x.alloc_type[b.allocs],
        alloc_override=x.alloc_override[b.allocs],
        alloc_exempt=x.alloc_exempt[b.allocs],
    )


def _rebased(codes: np.ndarray, start: int) -> np.ndarray:
    return np.where(codes >= 0, codes - start, -1)


def rebased_result(b: Block, r: ConsumptionResult) -> ConsumptionResult:
    """Block ``b``'s result with its codes re-based back to the whole input's (in place, except
    the allocation rows); run in the block's own thread."""
    for codes, start in ((r.row_license, b.license[0]), (r.row_consumer, b.party[0]),
                         (r.unlicensed_device, b.party[0]), (r.unlicensed_app, b.app[0])):
        codes += start
    return replace(r, row_allocation=np.append(b.allocs, -1)[r.row_allocation])  # -1 stays -1


def merge_results(results: list[ConsumptionResult],
                  run: Callable[[list[Callable[[], np.ndarray]]], list[np.ndarray]]) -> ConsumptionResult:
    """The whole result from the re-based results of the blocks (in block order): each field's
    parts concatenated; ``run`` runs the concatenations (the caller's threads, side by side)."""
    names = [f.name for f in fields(ConsumptionResult)]
    steps = [lambda name=name: np.concatenate([getattr(r, name) for r in results]) for name in names]
    return ConsumptionResult(**dict(zip(names, run(steps))))
