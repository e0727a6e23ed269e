"""Bundle resolution (SPEC 3.2): set arithmetic per bundle, the two capacity passes, fulfillment
and conflicts. Pure functions over dense codes; people lists are ascending person codes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import JIT
from .buffers import push

# Rule kinds, in the order of the SPEC's enum.
ASSIGN, EXCLUDE, ELIGIBLE, EXCLUDE_ELIGIBLE = 0, 1, 2, 3
# Assignee statuses, in the order of schema.BUNDLE_STATUSES.
GRANTED, OVER_BUNDLE, OVER_POOL, DISABLED, NO_ACCOUNT = 0, 1, 2, 3, 4


@njit(**JIT)
def bundle_sets(
    rule_offsets: np.ndarray,
    rule_kind: np.ndarray,
    rule_actor: np.ndarray,
    actor_offsets: np.ndarray,
    actor_persons: np.ndarray,
    n_person: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """resultant = assigned − excluded; eligible = eligible − exclude_eligible − excluded.

    ``rule_offsets`` groups the rules by bundle. Returns (assigned count, excluded count
    = |assigned ∩ excluded|, resultant CSR offsets, resultant people, eligible CSR offsets,
    eligible people).
    """
    n_bundle = rule_offsets.size - 1
    assigned = np.zeros(n_bundle, np.int64)
    excluded = np.zeros(n_bundle, np.int64)
    res_offsets = np.zeros(n_bundle + 1, np.int64)
    eli_offsets = np.zeros(n_bundle + 1, np.int64)
    res = np.empty(16, np.int64)
    eli = np.empty(16, np.int64)
    n_res = 0
    n_eli = 0
    in_assigned = np.full(n_person, -1, np.int64)
    in_excluded = np.full(n_person, -1, np.int64)
    in_eligible = np.full(n_person, -1, np.int64)
    in_not_eligible = np.full(n_person, -1, np.int64)
    for b in range(n_bundle):
        lo, hi = rule_offsets[b], rule_offsets[b + 1]
        for r in range(lo, hi):
            a = rule_actor[r]
            for k in range(actor_offsets[a], actor_offsets[a + 1]):
                p = actor_persons[k]
                if rule_kind[r] == EXCLUDE:
                    in_excluded[p] = b
                elif rule_kind[r] == EXCLUDE_ELIGIBLE:
                    in_not_eligible[p] = b
        start_res, start_eli = n_res, n_eli
        for r in range(lo, hi):
            a = rule_actor[r]
            kind = rule_kind[r]
            for k in range(actor_offsets[a], actor_offsets[a + 1]):
                p = actor_persons[k]
                if kind == ASSIGN and in_assigned[p] != b:
                    in_assigned[p] = b
                    assigned[b] += 1
                    if in_excluded[p] == b:
                        excluded[b] += 1
                    else:
                        res = push(res, n_res, p)
                        n_res += 1
                elif kind == ELIGIBLE and in_eligible[p] != b:
                    in_eligible[p] = b
                    if in_not_eligible[p] != b and in_excluded[p] != b:
                        eli = push(eli, n_eli, p)
                        n_eli += 1
        res[start_res:n_res].sort()
        eli[start_eli:n_eli].sort()
        res_offsets[b + 1] = n_res
        eli_offsets[b + 1] = n_eli
    return assigned, excluded, res_offsets, res[:n_res], eli_offsets, eli[:n_eli]


@njit(**JIT)
def grant_seats(
    res_offsets: np.ndarray,
    res_persons: np.ndarray,
    bundle_capacity: np.ndarray,
    bundle_group: np.ndarray,
    current_offsets: np.ndarray,
    current_accounts: np.ndarray,
    person_enabled: np.ndarray,
    person_account: np.ndarray,
    n_account: int,
    pool_bundles: np.ndarray,
    pool_capacity: np.ndarray,
    bundle_pool: np.ndarray,
) -> np.ndarray:
    """Status of every resultant (bundle, person): the bundle pass, then the pool pass.

    Capacity order within a bundle: current holders of its license group first, then the rest,
    each by person. ``pool_bundles`` lists the bundles by (pool, bundle). Capacities -1: unlimited.
    """
    status = np.empty(res_persons.size, np.int8)
    order = np.empty(res_persons.size, np.int64)  # per bundle: its fulfillable entries, in order
    n_ordered = np.zeros(bundle_capacity.size, np.int64)
    holder = np.full(n_account, -1, np.int64)
    for b in range(bundle_capacity.size):
        g = bundle_group[b]
        for k in range(current_offsets[g], current_offsets[g + 1]):
            holder[current_accounts[k]] = b
        lo, hi = res_offsets[b], res_offsets[b + 1]
        n = lo
        for first_holders in (True, False):
            for k in range(lo, hi):
                p = res_persons[k]
                if not person_enabled[p]:
                    status[k] = DISABLED
                elif person_account[p] < 0:
                    status[k] = NO_ACCOUNT
                elif (holder[person_account[p]] == b) == first_holders:
                    cap = bundle_capacity[b]
                    status[k] = GRANTED if cap < 0 or n - lo < cap else OVER_BUNDLE
                    order[n] = k
                    n += 1
        n_ordered[b] = n - lo
    used = np.zeros(pool_capacity.size, np.int64)
    for i in range(pool_bundles.size):
        b = pool_bundles[i]
        pool = bundle_pool[b]
        for j in range(res_offsets[b], res_offsets[b] + n_ordered[b]):
            k = order[j]
            if status[k] == GRANTED:
                used[pool] += 1
                if pool_capacity[pool] >= 0 and used[pool] > pool_capacity[pool]:
                    status[k] = OVER_POOL
    return status


@njit(**JIT)
def fulfillment_plan(
    group_bundle_offsets: np.ndarray,
    group_bundles: np.ndarray,
    res_offsets: np.ndarray,
    res_persons: np.ndarray,
    status: np.ndarray,
    person_account: np.ndarray,
    current_offsets: np.ndarray,
    current_accounts: np.ndarray,
    n_account: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Adds (desired − current) and removes (current − desired) of every mapped license group.

    Returns (op_group, op_remove, op_account, op_bundle, n_current per group), ops in
    (group, add before remove, account) order; an add names the smallest granting bundle.
    ``group_bundles`` lists each group's bundles ascending; ``current_accounts`` are distinct and
    ascending per group.
    """
    n_group = group_bundle_offsets.size - 1
    desired = np.full(n_account, -1, np.int64)
    first_bundle = np.empty(n_account, np.int64)
    current = np.full(n_account, -1, np.int64)
    op_group = np.empty(16, np.int64)
    op_remove = np.empty(16, np.int64)
    op_account = np.empty(16, np.int64)
    op_bundle = np.empty(16, np.int64)
    n_current = np.zeros(n_group, np.int64)
    n = 0
    adds = np.empty(16, np.int64)
    for g in range(n_group):
        if group_bundle_offsets[g] == group_bundle_offsets[g + 1]:
            continue  # no bundle maps to it: never touched
        for k in range(current_offsets[g], current_offsets[g + 1]):
            current[current_accounts[k]] = g
        n_current[g] = current_offsets[g + 1] - current_offsets[g]
        n_adds = 0
        for i in range(group_bundle_offsets[g], group_bundle_offsets[g + 1]):
            b = group_bundles[i]
            for k in range(res_offsets[b], res_offsets[b + 1]):
                if status[k] != GRANTED:
                    continue
                a = person_account[res_persons[k]]
                if desired[a] != g:
                    desired[a] = g
                    first_bundle[a] = b
                    if current[a] != g:
                        adds = push(adds, n_adds, a)
                        n_adds += 1
        adds[:n_adds].sort()
        for i in range(n_adds):
            a = adds[i]
            op_group = push(op_group, n, g)
            op_remove = push(op_remove, n, 0)
            op_account = push(op_account, n, a)
            op_bundle = push(op_bundle, n, first_bundle[a])
            n += 1
        for k in range(current_offsets[g], current_offsets[g + 1]):
            a = current_accounts[k]
            if desired[a] != g:
                op_group = push(op_group, n, g)
                op_remove = push(op_remove, n, 1)
                op_account = push(op_account, n, a)
                op_bundle = push(op_bundle, n, -1)
                n += 1
    return op_group[:n], op_remove[:n], op_account[:n], op_bundle[:n], n_current


@njit(**JIT)
def sku_conflicts(
    grant_person: np.ndarray,
    grant_bundle: np.ndarray,
    bundle_sku: np.ndarray,
    conflict_keys: np.ndarray,
    n_sku: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Conflict rows: ``duplicate_sku`` (kind 0) and ``exclusive_skus`` (kind 1).

    Grants come sorted by (person, bundle). ``conflict_keys`` are the sorted distinct
    ``sku_a * n_sku + sku_b`` with sku_a < sku_b. Returns (row person, row kind, sku CSR offsets,
    skus, bundle CSR offsets, bundles), rows in (person, kind, skus) order.
    """
    row_person = np.empty(16, np.int64)
    row_kind = np.empty(16, np.int64)
    skus = np.empty(16, np.int64)
    bundles = np.empty(16, np.int64)
    n_rows = n_skus = n_bundles = 0
    sku_offsets = np.empty(16, np.int64)
    bundle_offsets = np.empty(16, np.int64)
    sku_offsets[0] = 0
    bundle_offsets[0] = 0
    start = 0
    n = grant_person.size
    while start < n:
        stop = start
        while stop < n and grant_person[stop] == grant_person[start]:
            stop += 1
        person = grant_person[start]
        held = np.empty(stop - start, np.int64)
        for i in range(start, stop):
            held[i - start] = bundle_sku[grant_bundle[i]] * (1 << 31) + grant_bundle[i]
        held.sort()  # by (sku, bundle)
        distinct = np.empty(held.size, np.int64)
        n_distinct = 0
        i = 0
        while i < held.size:  # duplicate_sku: runs of one sku
            s = held[i] >> 31
            j = i
            while j < held.size and (held[j] >> 31) == s:
                j += 1
            distinct[n_distinct] = s
            n_distinct += 1
            if j - i >= 2:
                row_person = push(row_person, n_rows, person)
                row_kind = push(row_kind, n_rows, 0)
                skus = push(skus, n_skus, s)
                n_skus += 1
                for t in range(i, j):
                    bundles = push(bundles, n_bundles, held[t] & ((1 << 31) - 1))
                    n_bundles += 1
                n_rows += 1
                sku_offsets = push(sku_offsets, n_rows, n_skus)
                bundle_offsets = push(bundle_offsets, n_rows, n_bundles)
            i = j
        for x in range(n_distinct):  # exclusive_skus: conflicting pairs among the held skus
            for y in range(x + 1, n_distinct):
                key = distinct[x] * n_sku + distinct[y]
                at = np.searchsorted(conflict_keys, key)
                if at == conflict_keys.size or conflict_keys[at] != key:
                    continue
                row_person = push(row_person, n_rows, person)
                row_kind = push(row_kind, n_rows, 1)
                skus = push(skus, n_skus, distinct[x])
                skus = push(skus, n_skus + 1, distinct[y])
                n_skus += 2
                first = n_bundles
                for t in range(held.size):
                    s = held[t] >> 31
                    if s == distinct[x] or s == distinct[y]:
                        bundles = push(bundles, n_bundles, held[t] & ((1 << 31) - 1))
                        n_bundles += 1
                bundles[first:n_bundles].sort()
                n_rows += 1
                sku_offsets = push(sku_offsets, n_rows, n_skus)
                bundle_offsets = push(bundle_offsets, n_rows, n_bundles)
        start = stop
    return (row_person[:n_rows], row_kind[:n_rows], sku_offsets[:n_rows + 1], skus[:n_skus],
            bundle_offsets[:n_rows + 1], bundles[:n_bundles])
