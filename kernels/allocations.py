"""Allocation look-ups and the rules that derive from an allocation row (SPEC 1.2)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import JIT
from .codes import ALLOCATED, AWAITING_INVENTORY, PERMANENT, UNALLOCATED, USER


@njit(inline="always", **JIT)
def find_allocation(
    alloc_offsets: np.ndarray, alloc_license: np.ndarray, target: int, license: int
) -> int:
    """Index of the allocation of (license, target), or -1; allocations are CSR by target."""
    for k in range(alloc_offsets[target], alloc_offsets[target + 1]):
        if alloc_license[k] == license:
            return k
    return -1


@njit(inline="always", **JIT)
def host_binds(
    license: int,
    device: int,
    license_metric: np.ndarray,
    license_vm_host: np.ndarray,
    device_host: np.ndarray,
    alloc_offsets: np.ndarray,
    alloc_license: np.ndarray,
    alloc_binds: np.ndarray,
) -> bool:
    """Host flow-down: with `vm_rights = host` (device and core licenses only), a VM is bound to
    the license when its direct host has a binding allocation on it."""
    if not license_vm_host[license] or license_metric[license] == USER:
        return False  # first the license's flags (few, cached), then the device's host
    host = device_host[device]
    if host < 0:
        return False
    k = find_allocation(alloc_offsets, alloc_license, host, license)
    return k >= 0 and alloc_binds[k]


def binding(alloc_type: np.ndarray, alloc_exempt: np.ndarray) -> np.ndarray:
    """An allocation binds when its type is not unallocated or it carries an exemption."""
    return (alloc_type != UNALLOCATED) | alloc_exempt


def forcing(
    alloc_type: np.ndarray, alloc_binds: np.ndarray, consume_on_license: np.ndarray
) -> np.ndarray:
    """A binding allocation forces its consumer when permanent, or when allocations consume."""
    consumable = (alloc_type == ALLOCATED) | (alloc_type == AWAITING_INVENTORY)
    return alloc_binds & ((alloc_type == PERMANENT) | (consume_on_license & consumable))
