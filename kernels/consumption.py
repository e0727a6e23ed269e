"""SPEC section 1 over dense integer codes: the public entry point of the consumption kernels.

All ids are dense codes made once at the edge, sorted like the ids they stand for and tenant
first, so one pass over many tenants gives each tenant's own result. Users and devices share
one code space ("parties") so that user ids and device ids compare directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .allocations import binding, forcing
from .assignment import bind_pairs, spill_free_pairs
from .codes import DEVICE_CONSUMER, USER, USER_CONSUMER
from .consumers import (
    apply_vm_rules,
    bound_rows,
    consumer_entries,
    group_consumers,
    over_utilization,
    table_consumption,
)
from .sorting import counting_order, csr_offsets, distinct_sorted_pairs


@dataclass(frozen=True)
class ConsumptionInput:
    """Section 1 inputs as arrays. Party arrays are indexed by party code (-1: null)."""

    n_party: int
    n_app: int
    install_device: np.ndarray  # int64 party code per installation row
    install_app: np.ndarray  # int64 application code
    device_user: np.ndarray  # int64 party code of the device's user, -1
    device_host: np.ndarray  # int64 party code of the VM's host, -1
    device_cores: np.ndarray  # int64, -1 when unknown
    user_known: np.ndarray  # bool: a user with status active
    user_device_count: np.ndarray  # int64: devices whose user_id is this party
    license_metric: np.ndarray  # int8 codes.METRICS
    license_entitlements: np.ndarray  # int64, -1 unlimited
    license_multiple_use: np.ndarray  # int64
    license_allocations_consume: np.ndarray  # bool
    license_vm_host: np.ndarray  # bool
    license_priority: np.ndarray  # int64
    license_true_up: np.ndarray  # bool
    license_points: np.ndarray  # float64 (n_license, 2): points_per_core, min_points
    link_license: np.ndarray  # int64 license_applications
    link_app: np.ndarray
    alloc_license: np.ndarray  # int64
    alloc_target: np.ndarray  # int64 party code
    alloc_type: np.ndarray  # int8 codes.ALLOCATION_TYPES
    alloc_override: np.ndarray  # float64, NaN when null
    alloc_exempt: np.ndarray  # bool


@dataclass(frozen=True)
class ConsumptionResult:
    """Consumer rows in output order, per-license evidence, and the unlicensed pairs."""

    row_license: np.ndarray
    row_type: np.ndarray  # codes.CONSUMER_TYPES
    row_consumer: np.ndarray  # party code
    row_devices: np.ndarray
    row_consumption: np.ndarray
    row_reason: np.ndarray  # codes.REASONS
    row_allocation: np.ndarray  # index into the input allocations, -1
    row_over_utilized: np.ndarray
    license_evidence: np.ndarray
    unlicensed_device: np.ndarray
    unlicensed_app: np.ndarray


def compute(x: ConsumptionInput) -> ConsumptionResult:
    """Rules 1-3 of SPEC section 1."""
    n_license = x.license_metric.size
    metric = x.license_metric

    # Evidence: distinct (device, application) pairs, then free-pair order.
    pair_device, pair_app = distinct_sorted_pairs(x.install_device, x.install_app, x.n_party, x.n_app)
    cand_offsets, cand_license = _candidates(x, n_license)
    licensed = np.diff(cand_offsets)[pair_app] > 0
    unlicensed_device, unlicensed_app = pair_device[~licensed], pair_app[~licensed]
    pair_device, pair_app = pair_device[licensed], pair_app[licensed]
    user = x.device_user
    known_user = np.where((user >= 0) & x.user_known[np.maximum(user, 0)], user, -1)
    consumer_key = np.where(known_user >= 0, known_user, np.arange(x.n_party))
    order = counting_order(consumer_key[pair_device], x.n_party, np.arange(pair_device.size))
    pair_device, pair_app = pair_device[order], pair_app[order]

    # Allocations, CSR by target; those on user licenses to users who are not known are ignored.
    valid = (metric[x.alloc_license] != USER) | x.user_known[x.alloc_target]
    alloc_index = np.flatnonzero(valid)
    alloc_index = alloc_index[np.argsort(x.alloc_target[alloc_index], kind="stable")]
    alloc = _Allocations(x, alloc_index)

    pair_license = bind_pairs(
        pair_device, pair_app, cand_offsets, cand_license, metric, x.license_vm_host,
        known_user, x.device_host, alloc.offsets, alloc.license, alloc.binds,
    )
    forced = np.flatnonzero(alloc.forces)
    forced_license = alloc.license[forced]
    forced_type = np.where(metric[forced_license] == USER, USER_CONSUMER, DEVICE_CONSUMER)
    forced_entries = (forced_license, forced_type.astype(np.int8), alloc.target[forced])

    free = np.flatnonzero(pair_license < 0)
    free_app = pair_app[free]
    first_candidate = cand_offsets[free_app]
    if np.all(cand_offsets[free_app + 1] - first_candidate == 1):
        # Rule 3 has no choice to make (every free pair has one candidate), so the totals it
        # weighs choices by are not needed: each free pair takes its only candidate.
        pair_license[free] = cand_license[first_candidate]
    else:
        consumed = _table_totals(x, alloc, pair_device, pair_license, known_user, forced_entries)
        spill_free_pairs(
            pair_device, pair_app, pair_license, cand_offsets, cand_license, metric,
            x.license_entitlements, x.license_multiple_use, x.license_true_up, x.license_points,
            known_user, x.device_cores, alloc.offsets, alloc.license, alloc.override, consumed,
        )

    rows = _consumer_rows(x, alloc, pair_device, pair_license, known_user, forced_entries)
    row_license, row_type, row_consumer, consumption, reason, allocation, devices = rows
    row_key = (row_license * 2 + row_type) * x.n_party + row_consumer
    apply_vm_rules(
        row_key, row_license, row_type, row_consumer, consumption, reason, metric,
        x.license_vm_host, x.license_points, x.device_host, x.device_cores, x.n_party,
    )
    bound = bound_rows(
        row_license, row_type, row_consumer, allocation, metric, x.license_vm_host,
        x.device_host, alloc.offsets, alloc.license, alloc.binds,
    )
    over = over_utilization(row_license, row_type, row_consumer, bound, consumption, x.license_entitlements)
    evidence = np.bincount(pair_license, minlength=n_license).astype(np.int64)
    return ConsumptionResult(
        row_license=row_license,
        row_type=row_type,
        row_consumer=row_consumer,
        row_devices=devices,
        row_consumption=consumption,
        row_reason=reason,
        row_allocation=np.append(alloc_index, -1)[allocation],  # -1 stays -1
        row_over_utilized=over,
        license_evidence=evidence,
        unlicensed_device=unlicensed_device,
        unlicensed_app=unlicensed_app,
    )


class _Allocations:
    """The valid allocations, sorted by target, with their derived flags."""

    def __init__(self, x: ConsumptionInput, index: np.ndarray) -> None:
        self.license = x.alloc_license[index]
        self.target = x.alloc_target[index]
        self.type = x.alloc_type[index]
        self.override = x.alloc_override[index]
        self.exempt = x.alloc_exempt[index]
        self.offsets = csr_offsets(self.target, x.n_party)
        self.binds = binding(self.type, self.exempt)
        self.forces = forcing(self.type, self.binds, x.license_allocations_consume[self.license])


def _candidates(x: ConsumptionInput, n_license: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidates of each application, CSR, in (priority, license_id) order."""
    app, lic = distinct_sorted_pairs(x.link_app, x.link_license, x.n_app, n_license)
    order = np.lexsort((lic, x.license_priority[lic], app))
    return csr_offsets(app, x.n_app), lic[order]


def _consumer_rows(x, alloc, pair_device, pair_license, known_user, forced_entries):
    """Group assigned pairs and forced consumers into rows with Rule 2's table consumption."""
    entry_license, entry_type, entry_consumer, entry_device = consumer_entries(
        pair_device, pair_license, x.license_metric, known_user, *forced_entries)
    row_license, row_type, row_consumer, row_devices, _ = group_consumers(
        entry_license, entry_type, entry_consumer, entry_device, x.n_party, x.license_metric.size
    )
    has_app = np.zeros(x.license_metric.size, np.bool_)
    has_app[x.link_license] = True
    consumption, reason, allocation, devices = table_consumption(
        row_license, row_type, row_consumer, row_devices, x.license_metric,
        x.license_multiple_use, x.license_points, has_app, x.license_allocations_consume,
        x.device_cores, x.user_device_count, alloc.offsets, alloc.license, alloc.type,
        alloc.override, alloc.exempt,
    )
    return row_license, row_type, row_consumer, consumption, reason, allocation, devices


def _table_totals(x, alloc, pair_device, pair_license, known_user, forced_entries) -> np.ndarray:
    """Consumption so far per license from forced consumers and bound pairs (no VM rules)."""
    rows = _consumer_rows(x, alloc, pair_device, pair_license, known_user, forced_entries)
    row_license, consumption = rows[0], rows[3]
    # float64 even when there are no rows (np.bincount then returns int64): the spill-over adds
    # fractional Δ to it.
    return np.bincount(row_license, weights=consumption, minlength=x.license_metric.size).astype(np.float64)
