"""Peer implementations of the benchmark workloads (DuckDB SQL, Polars lazy), written the way a
capable analyst would, for the *restricted* shapes they can express (see ``workload``).

Every peer result is checked equal to licensecore's on the same data before its time counts.
"""

from licensecore.bench.peers.workload import (
    BUNDLE_OUTPUT_COLUMNS,
    CONSUMPTION_OUTPUT_COLUMNS,
    assert_same,
    restricted_bundle_workload,
    restricted_workload,
)

__all__ = [
    "BUNDLE_OUTPUT_COLUMNS",
    "CONSUMPTION_OUTPUT_COLUMNS",
    "assert_same",
    "restricted_bundle_workload",
    "restricted_workload",
]
