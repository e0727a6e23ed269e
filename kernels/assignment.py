"""Rule 1 (SPEC 1.3): assign each evidence pair to one license.

Pairs arrive in free-pair order: ascending (consumer key, device, application), where the
consumer key of a device is its known user, else the device itself. In that order every
consumer's pairs are contiguous (a user consumer's within one consumer-key block, a device
consumer's within one device run; a block may also hold the run of a device whose id equals the
user's, a different consumer), and a free pair never meets a consumer that bound or forced pairs
already put on a candidate (that consumer would bind the pair). So the greedy pass keeps
per-consumer state in stamp arrays indexed by license, reset by bumping a counter: O(1) per
candidate, no hashing, no per-block clearing.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._config import JIT
from .allocations import find_allocation, host_binds
from .codes import CORE, USER


@njit(inline="always", **JIT)
def units(n: int, m: int) -> int:
    """units(n, m) = ceil(n / m) for m > 0; for m = 0, 1 when n >= 1, else 0."""
    if m == 0:
        return 1 if n >= 1 else 0
    return (n + m - 1) // m


@njit(inline="always", **JIT)
def points(cores: int, points_per_core: float, min_points: float) -> float:
    """points(d, L) = max(min_points, cores * points_per_core); cores must be known."""
    return max(min_points, cores * points_per_core)


@njit(**JIT)
def bind_pairs(
    pair_device: np.ndarray,
    pair_app: np.ndarray,
    cand_offsets: np.ndarray,
    cand_license: np.ndarray,
    license_metric: np.ndarray,
    license_vm_host: np.ndarray,
    device_known_user: np.ndarray,
    device_host: np.ndarray,
    alloc_offsets: np.ndarray,
    alloc_license: np.ndarray,
    alloc_binds: np.ndarray,
) -> np.ndarray:
    """License of every bound pair (the first candidate binding it), -1 for the others."""
    pair_license = np.full(pair_device.size, -1, np.int64)
    may_bind = _may_bind(alloc_offsets, alloc_binds, device_known_user, device_host)
    for i in range(pair_device.size):
        d = pair_device[i]
        if not may_bind[d]:
            continue
        a = pair_app[i]
        for j in range(cand_offsets[a], cand_offsets[a + 1]):
            lic = cand_license[j]
            if license_metric[lic] == USER:
                target = device_known_user[d]  # allocations of user licenses bind known users
            else:
                target = d
            if target >= 0:
                k = find_allocation(alloc_offsets, alloc_license, target, lic)
                if k >= 0 and alloc_binds[k]:
                    pair_license[i] = lic
                    break
            if host_binds(lic, d, license_metric, license_vm_host, device_host, alloc_offsets,
                          alloc_license, alloc_binds):
                pair_license[i] = lic
                break
    return pair_license


@njit(**JIT)
def _may_bind(alloc_offsets: np.ndarray, alloc_binds: np.ndarray, device_known_user: np.ndarray,
              device_host: np.ndarray) -> np.ndarray:
    """Per device, whether a pair of it may be bound: it, its known user or its host is the target
    of a binding allocation. No candidate binds the pairs of other devices, so with allocations
    on few parties most pairs skip their candidates' look-ups (random reads by party code)."""
    n_party = alloc_offsets.size - 1
    target = np.zeros(n_party, np.bool_)
    for p in range(n_party):
        for k in range(alloc_offsets[p], alloc_offsets[p + 1]):
            if alloc_binds[k]:
                target[p] = True
                break
    may = np.empty(n_party, np.bool_)
    for d in range(n_party):
        user, host = device_known_user[d], device_host[d]
        may[d] = target[d] or (user >= 0 and target[user]) or (host >= 0 and target[host])
    return may


@njit(**JIT)
def spill_free_pairs(
    pair_device: np.ndarray,
    pair_app: np.ndarray,
    pair_license: np.ndarray,
    cand_offsets: np.ndarray,
    cand_license: np.ndarray,
    license_metric: np.ndarray,
    license_entitlements: np.ndarray,
    license_multiple_use: np.ndarray,
    license_true_up: np.ndarray,
    license_points: np.ndarray,
    device_known_user: np.ndarray,
    device_cores: np.ndarray,
    alloc_offsets: np.ndarray,
    alloc_license: np.ndarray,
    alloc_override: np.ndarray,
    consumed: np.ndarray,
) -> None:
    """Greedy spill-over of the free pairs (``pair_license == -1`` with candidates), in place.

    ``consumed`` holds each license's consumption so far (forced consumers and bound pairs) and
    is updated as pairs are taken. ``license_points`` is (points_per_core, min_points) per row.
    """
    n_license = license_metric.size
    user_stamp = np.full(n_license, -1, np.int64)  # block that put its consumer on the license
    user_devices = np.zeros(n_license, np.int64)
    user_last_device = np.full(n_license, -1, np.int64)
    user_fixed = np.zeros(n_license, np.bool_)  # consumption comes from an override
    device_stamp = np.full(n_license, -1, np.int64)
    n_cand = 0
    for a in range(cand_offsets.size - 1):
        n_cand = max(n_cand, cand_offsets[a + 1] - cand_offsets[a])
    delta = np.empty(max(n_cand, 1), np.float64)
    block = -1
    run = -1
    prev_key = -1
    prev_device = -1
    for i in range(pair_device.size):
        d = pair_device[i]
        user = device_known_user[d]
        key = user if user >= 0 else d
        if key != prev_key:
            block += 1
            prev_key = key
        if d != prev_device:
            run += 1
            prev_device = d
        if pair_license[i] >= 0:
            continue
        a = pair_app[i]
        lo = cand_offsets[a]
        hi = cand_offsets[a + 1]
        if lo == hi:
            continue
        for j in range(lo, hi):
            lic = cand_license[j]
            metric = license_metric[lic]
            if metric == USER and user >= 0:
                if user_stamp[lic] == block:
                    if user_fixed[lic] or user_last_device[lic] == d:
                        delta[j - lo] = 0.0
                    else:
                        m = license_multiple_use[lic]
                        n = user_devices[lic]
                        delta[j - lo] = units(n + 1, m) - units(n, m)
                else:
                    delta[j - lo] = _new_consumer(
                        lic, user, 1.0, alloc_offsets, alloc_license, alloc_override
                    )
            elif device_stamp[lic] == run:  # a device consumer: the pair's own device
                delta[j - lo] = 0.0
            else:
                base = 1.0
                if metric == CORE:
                    cores = device_cores[d]
                    ppc, minp = license_points[lic, 0], license_points[lic, 1]
                    base = points(cores, ppc, minp) if cores >= 0 else 0.0
                target = d if metric != USER else -1  # user-license allocations name users
                delta[j - lo] = _new_consumer(
                    lic, target, base, alloc_offsets, alloc_license, alloc_override
                )
        chosen = _choose(delta, cand_license, lo, hi, consumed, license_entitlements, license_true_up)
        lic = cand_license[chosen]
        pair_license[i] = lic
        consumed[lic] += delta[chosen - lo]
        if license_metric[lic] == USER and user >= 0:
            if user_stamp[lic] != block:
                user_stamp[lic] = block
                user_devices[lic] = 0
                user_last_device[lic] = -1
                user_fixed[lic] = _has_override(lic, user, alloc_offsets, alloc_license, alloc_override)
            if user_last_device[lic] != d:
                user_last_device[lic] = d
                user_devices[lic] += 1
        else:
            device_stamp[lic] = run


@njit(inline="always", **JIT)
def _has_override(lic, target, alloc_offsets, alloc_license, alloc_override) -> bool:
    k = find_allocation(alloc_offsets, alloc_license, target, lic)
    return k >= 0 and not math.isnan(alloc_override[k])


@njit(inline="always", **JIT)
def _new_consumer(lic, target, base, alloc_offsets, alloc_license, alloc_override) -> float:
    """Table consumption of a consumer new to the license: its override, else ``base``.

    A free pair's consumer has no binding allocation, so no exemption: only an unallocated row
    can supply an override. ``target`` -1 (an unknown-user device on a user license) has none.
    """
    if target < 0:
        return base
    k = find_allocation(alloc_offsets, alloc_license, target, lic)
    if k >= 0 and not math.isnan(alloc_override[k]):
        return alloc_override[k]
    return base


@njit(inline="always", **JIT)
def _choose(delta, cand_license, lo, hi, consumed, license_entitlements, license_true_up) -> int:
    """First candidate with Δ = 0; else first within entitlements; else first true_up; else first."""
    for j in range(lo, hi):
        if delta[j - lo] == 0.0:
            return j
    for j in range(lo, hi):
        lic = cand_license[j]
        ent = license_entitlements[lic]
        if ent < 0 or consumed[lic] + delta[j - lo] <= ent:
            return j
    for j in range(lo, hi):
        if license_true_up[cand_license[j]]:
            return j
    return lo

