"""Rules 2 and 3 (SPEC 1.4, 1.5): the consumers of each license and what each consumes.

Rows come out in output order: (license, consumer_type, consumer_id), the codes being dense and
sorted like the ids they stand for, tenant first.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._config import JIT
from .allocations import find_allocation, host_binds
from .assignment import points, units
from .codes import (
    ALLOCATED,
    AWAITING_INVENTORY,
    CAPPED_BY_HOST,
    CORE,
    COVERED_BY_HOST,
    DEVICE_CONSUMER,
    EXEMPT,
    INSTALLED,
    MISSING_HARDWARE,
    OVERRIDE,
    PERMANENT,
    R_ALLOCATION,
    R_PERMANENT,
    UNALLOCATED,
    USER,
    USER_CONSUMER,
)
from .sorting import counting_order, sort_keys


@njit(**JIT)
def group_consumers(
    entry_license: np.ndarray,
    entry_type: np.ndarray,
    entry_consumer: np.ndarray,
    entry_device: np.ndarray,
    n_party: int,
    n_license: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group entries by (license, consumer_type, consumer).

    Entries are assigned pairs in free-pair order (so each consumer's pairs are in ascending
    device order) followed by forced consumers (``entry_device`` -1). Returns per group:
    license, type, consumer, distinct devices among its pairs, number of pairs.
    """
    n = entry_license.size
    key = np.empty(n, np.int64)  # (license * 2 + type) * n_party + consumer
    for i in range(n):
        key[i] = (entry_license[i] * 2 + entry_type[i]) * n_party + entry_consumer[i]
    # Stable: each group's devices stay in ascending order.
    key, device = sort_keys(key, 2 * n_license * n_party, entry_device)
    n_rows = 0
    for i in range(n):
        if i == 0 or key[i] != key[i - 1]:
            n_rows += 1
    row_license = np.empty(n_rows, np.int64)
    row_type = np.empty(n_rows, np.int8)
    row_consumer = np.empty(n_rows, np.int64)
    row_devices = np.zeros(n_rows, np.int64)
    row_pairs = np.zeros(n_rows, np.int64)
    r = -1
    last_device = -1
    for i in range(n):
        if i == 0 or key[i] != key[i - 1]:
            r += 1
            license_type = key[i] // n_party
            row_license[r] = license_type // 2
            row_type[r] = license_type % 2
            row_consumer[r] = key[i] % n_party
            last_device = -1
        d = device[i]
        if d >= 0:
            row_pairs[r] += 1
            if d != last_device:
                row_devices[r] += 1
                last_device = d
    return row_license, row_type, row_consumer, row_devices, row_pairs


@njit(**JIT)
def consumer_entries(
    pair_device: np.ndarray,
    pair_license: np.ndarray,
    license_metric: np.ndarray,
    known_user: np.ndarray,
    forced_license: np.ndarray,
    forced_type: np.ndarray,
    forced_consumer: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The entries ``group_consumers`` groups: each assigned pair (its license's consumer: the
    device's known user for user licenses, else the device), then the forced consumers
    (device -1). Returns license, type, consumer and device per entry."""
    n_assigned = 0
    for i in range(pair_license.size):
        if pair_license[i] >= 0:
            n_assigned += 1
    n = n_assigned + forced_license.size
    entry_license = np.empty(n, np.int64)
    entry_type = np.empty(n, np.int8)
    entry_consumer = np.empty(n, np.int64)
    entry_device = np.full(n, -1, np.int64)
    k = 0
    for i in range(pair_license.size):
        lic = pair_license[i]
        if lic < 0:
            continue
        device = pair_device[i]
        user = known_user[device]
        entry_license[k] = lic
        entry_device[k] = device
        if license_metric[lic] == USER and user >= 0:
            entry_type[k] = USER_CONSUMER
            entry_consumer[k] = user
        else:
            entry_type[k] = DEVICE_CONSUMER
            entry_consumer[k] = device
        k += 1
    entry_license[k:] = forced_license
    entry_type[k:] = forced_type
    entry_consumer[k:] = forced_consumer
    return entry_license, entry_type, entry_consumer, entry_device


@njit(**JIT)
def table_consumption(
    row_license: np.ndarray,
    row_type: np.ndarray,
    row_consumer: np.ndarray,
    row_devices: np.ndarray,
    license_metric: np.ndarray,
    license_multiple_use: np.ndarray,
    license_points: np.ndarray,
    license_has_app: np.ndarray,
    license_consume: np.ndarray,
    device_cores: np.ndarray,
    user_device_count: np.ndarray,
    alloc_offsets: np.ndarray,
    alloc_license: np.ndarray,
    alloc_type: np.ndarray,
    alloc_override: np.ndarray,
    alloc_exempt: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rule 2's table, without the virtual-machine rules, for every row.

    Returns (consumption, reason, allocation index or -1, n devices); ``row_devices`` is the
    number of distinct devices among the row's pairs. Allocations of user licenses bind user
    consumers only, those of device and core licenses device consumers only.
    """
    n = row_license.size
    consumption = np.zeros(n, np.float64)
    reason = np.zeros(n, np.int8)
    allocation = np.full(n, -1, np.int64)
    devices = np.ones(n, np.int64)
    for r in range(n):
        lic = row_license[r]
        c = row_consumer[r]
        metric = license_metric[lic]
        k = -1
        if (metric == USER) == (row_type[r] != DEVICE_CONSUMER):
            k = find_allocation(alloc_offsets, alloc_license, c, lic)
        allocation[r] = k
        forced = False
        by_type = R_ALLOCATION
        if k >= 0:
            t = alloc_type[k]
            binds = t != UNALLOCATED or alloc_exempt[k]
            consumable = t == ALLOCATED or t == AWAITING_INVENTORY
            forced = binds and (t == PERMANENT or (license_consume[lic] and consumable))
            if t == PERMANENT:
                by_type = R_PERMANENT
        if metric == USER:
            if forced:
                devices[r] = max(1, user_device_count[c])
            else:
                devices[r] = max(1, row_devices[r])
        calculated = 1.0
        calc_reason = by_type if forced else INSTALLED
        if metric == USER:
            calculated = float(units(devices[r], license_multiple_use[lic]))
        elif metric == CORE:
            cores = device_cores[c]
            if cores >= 0:
                calculated = points(cores, license_points[lic, 0], license_points[lic, 1])
            else:
                calculated = 0.0
                calc_reason = MISSING_HARDWARE
        if k >= 0 and alloc_exempt[k]:
            consumption[r] = 0.0
            reason[r] = EXEMPT
        elif k >= 0 and not math.isnan(alloc_override[k]):
            consumption[r] = alloc_override[k]
            reason[r] = OVERRIDE
        elif forced and not license_has_app[lic]:
            consumption[r] = 1.0
            reason[r] = by_type
        else:
            consumption[r] = calculated
            reason[r] = calc_reason
    return consumption, reason, allocation, devices


@njit(**JIT)
def apply_vm_rules(
    row_key: np.ndarray,
    row_license: np.ndarray,
    row_type: np.ndarray,
    row_consumer: np.ndarray,
    consumption: np.ndarray,
    reason: np.ndarray,
    license_metric: np.ndarray,
    license_vm_host: np.ndarray,
    license_points: np.ndarray,
    device_host: np.ndarray,
    device_cores: np.ndarray,
    n_party: int,
) -> None:
    """VM host coverage and, for core licenses, the host cap (SPEC 1.4), in place.

    ``row_key`` = (license * 2 + type) * n_party + consumer, ascending: it finds a host's row.
    """
    n = row_license.size
    capped = np.zeros(n, np.bool_)
    n_capped = 0
    for r in range(n):
        lic = row_license[r]
        host = device_host[row_consumer[r]]
        if row_type[r] != DEVICE_CONSUMER or not license_vm_host[lic] or host < 0:
            continue
        if license_metric[lic] == USER or reason[r] == EXEMPT or reason[r] == OVERRIDE:
            continue
        host_key = (lic * 2 + DEVICE_CONSUMER) * n_party + host
        h = np.searchsorted(row_key, host_key)
        if h < n and row_key[h] == host_key:
            consumption[r] = 0.0
            reason[r] = COVERED_BY_HOST
        elif license_metric[lic] == CORE and device_cores[row_consumer[r]] >= 0 \
                and device_cores[host] >= 0:  # unknown-core VMs are left out of the cap
            capped[r] = True
            n_capped += 1
    vm_rows = np.empty(n_capped, np.int64)
    k = 0
    for r in range(n):
        if capped[r]:
            vm_rows[k] = r
            k += 1
    row_host = device_host[row_consumer]
    vm_rows = counting_order(row_host, n_party, vm_rows)
    vm_rows = counting_order(row_license, license_metric.size, vm_rows)
    total = 0.0
    cap = 0.0
    for i in range(vm_rows.size):
        r = vm_rows[i]
        lic = row_license[r]
        if i == 0 or lic != row_license[vm_rows[i - 1]] or row_host[r] != row_host[vm_rows[i - 1]]:
            total = 0.0
            cap = points(device_cores[row_host[r]], license_points[lic, 0], license_points[lic, 1])
        if total + consumption[r] <= cap:
            total += consumption[r]
        else:
            consumption[r] = max(cap - total, 0.0)
            reason[r] = CAPPED_BY_HOST
            total = cap


@njit(**JIT)
def over_utilization(
    row_license: np.ndarray,
    row_type: np.ndarray,
    row_consumer: np.ndarray,
    row_bound: np.ndarray,
    consumption: np.ndarray,
    license_entitlements: np.ndarray,
) -> np.ndarray:
    """Rule 3: bound consumers first, then the rest, each by (consumer_id, consumer_type).

    Rows are sorted by (license, type, consumer), so a license's rows are two runs sorted by
    consumer (one per type): merging them gives (consumer_id, consumer_type) order without a sort,
    once for the bound rows and once for the rest.
    """
    n = row_license.size
    over = np.zeros(n, np.bool_)
    start = 0
    while start < n:
        lic = row_license[start]
        end = start
        while end < n and row_license[end] == lic:
            end += 1
        ent = license_entitlements[lic]
        if ent >= 0:
            mid = start
            while mid < end and row_type[mid] == row_type[start]:
                mid += 1
            running = 0.0
            for bound in (True, False):
                i, j = start, mid
                while i < mid or j < end:
                    if j >= end or (i < mid and row_consumer[i] * 2 + row_type[i]
                                    < row_consumer[j] * 2 + row_type[j]):
                        r = i
                        i += 1
                    else:
                        r = j
                        j += 1
                    if row_bound[r] != bound:
                        continue
                    running += consumption[r]
                    if consumption[r] > 0 and running > ent:
                        over[r] = True
        start = end
    return over


@njit(**JIT)
def bound_rows(
    row_license: np.ndarray,
    row_type: np.ndarray,
    row_consumer: np.ndarray,
    row_allocation: np.ndarray,
    license_metric: np.ndarray,
    license_vm_host: np.ndarray,
    device_host: np.ndarray,
    alloc_offsets: np.ndarray,
    alloc_license: np.ndarray,
    alloc_binds: np.ndarray,
) -> np.ndarray:
    """Consumers bound by their own allocation, or VMs bound through their host's (Rule 3)."""
    bound = np.zeros(row_license.size, np.bool_)
    for r in range(row_license.size):
        k = row_allocation[r]
        if k >= 0 and alloc_binds[k]:
            bound[r] = True
            continue
        if row_type[r] == DEVICE_CONSUMER:
            bound[r] = host_binds(row_license[r], row_consumer[r], license_metric, license_vm_host,
                                  device_host, alloc_offsets, alloc_license, alloc_binds)
    return bound
