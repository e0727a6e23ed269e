"""Consumption of the restricted workload (``workload.restricted_workload``) in DuckDB SQL.

One application -> one license, so every evidence pair goes to its application's license; the
rest is SPEC 1.2/1.4 as joins and aggregates: the consumer of a pair (the device's active user for
user licenses, else the device), allocations ignored when they target a user who is not active,
forcing (permanent, or ``allocations_consume`` with allocated/awaiting_inventory), n devices
(pair devices, or every owned device when forced, at least 1), ``units(n, multiple_use)`` and the
exempt > override > forced-without-application > calculated precedence.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pyarrow as pa

INPUTS = ("users", "devices", "installations", "licenses", "license_applications", "allocations")

CONSUMERS_SQL = """
CREATE TEMP TABLE consumer_rows AS
WITH lic AS (
    SELECT tenant_id, license_id, metric, entitlements,
           coalesce(multiple_use, 1) AS mu, coalesce(allocations_consume, false) AS ac
    FROM licenses
), linked AS (
    SELECT DISTINCT tenant_id, license_id, application_id FROM license_applications
), known AS (
    SELECT tenant_id, user_id FROM users WHERE coalesce(status, 'active') = 'active'
), dev AS (
    SELECT d.tenant_id, d.device_id, k.user_id AS known_user
    FROM devices d LEFT JOIN known k ON k.tenant_id = d.tenant_id AND k.user_id = d.user_id
), pairs AS (
    SELECT DISTINCT i.tenant_id, l.license_id, i.device_id, i.application_id
    FROM installations i JOIN linked l USING (tenant_id, application_id)
), pair_consumers AS (
    SELECT p.tenant_id, p.license_id,
           CASE WHEN lic.metric = 'user' AND d.known_user IS NOT NULL THEN 'user' ELSE 'device' END
               AS consumer_type,
           CASE WHEN lic.metric = 'user' AND d.known_user IS NOT NULL THEN d.known_user
                ELSE p.device_id END AS consumer_id,
           count(DISTINCT p.device_id) AS pair_devices
    FROM pairs p JOIN lic USING (tenant_id, license_id) JOIN dev d USING (tenant_id, device_id)
    GROUP BY ALL
), alloc AS (  -- user-license allocations on a user who is not active are ignored
    SELECT a.tenant_id, a.license_id, a.target_id,
           CASE WHEN lic.metric = 'user' THEN 'user' ELSE 'device' END AS consumer_type,
           coalesce(a.type, 'allocated') AS type, a.override, a.exemption, lic.ac
    FROM allocations a JOIN lic USING (tenant_id, license_id)
    LEFT JOIN known k ON k.tenant_id = a.tenant_id AND k.user_id = a.target_id
    WHERE lic.metric <> 'user' OR k.user_id IS NOT NULL
), forced AS (
    SELECT tenant_id, license_id, consumer_type, target_id AS consumer_id
    FROM alloc
    WHERE type = 'permanent' OR (ac AND type IN ('allocated', 'awaiting_inventory'))
), owned AS (
    SELECT tenant_id, user_id, count(*) AS owned_devices
    FROM devices WHERE user_id IS NOT NULL GROUP BY ALL
), keys AS (
    SELECT tenant_id, license_id, consumer_type, consumer_id FROM pair_consumers
    UNION
    SELECT tenant_id, license_id, consumer_type, consumer_id FROM forced
), has_link AS (
    SELECT DISTINCT tenant_id, license_id FROM linked
), calc AS (
    SELECT k.tenant_id, k.license_id, k.consumer_type, k.consumer_id, lic.metric, lic.mu,
           f.consumer_id IS NOT NULL AS is_forced, h.license_id IS NOT NULL AS linked,
           a.override, a.exemption,
           CASE WHEN f.consumer_id IS NOT NULL AND k.consumer_type = 'user'
                THEN greatest(coalesce(o.owned_devices, 0), 1)
                ELSE coalesce(p.pair_devices, 1) END AS n
    FROM keys k
    JOIN lic USING (tenant_id, license_id)
    LEFT JOIN pair_consumers p USING (tenant_id, license_id, consumer_type, consumer_id)
    LEFT JOIN forced f USING (tenant_id, license_id, consumer_type, consumer_id)
    LEFT JOIN alloc a ON a.tenant_id = k.tenant_id AND a.license_id = k.license_id
        AND a.target_id = k.consumer_id AND a.consumer_type = k.consumer_type
    LEFT JOIN owned o ON o.tenant_id = k.tenant_id AND o.user_id = k.consumer_id
    LEFT JOIN has_link h ON h.tenant_id = k.tenant_id AND h.license_id = k.license_id
)
SELECT tenant_id, license_id, consumer_type, consumer_id,
       CAST(CASE
           WHEN exemption IS NOT NULL THEN 0
           WHEN override IS NOT NULL THEN override
           WHEN is_forced AND NOT linked THEN 1
           WHEN metric = 'device' THEN 1
           WHEN mu = 0 THEN CASE WHEN n >= 1 THEN 1 ELSE 0 END
           ELSE (n + mu - 1) // mu
       END AS DOUBLE) AS consumption
FROM calc
"""

SUMMARY_SQL = """
WITH evidence AS (
    SELECT l.tenant_id, l.license_id, count(*) AS evidence
    FROM (SELECT DISTINCT tenant_id, device_id, application_id FROM installations) i
    JOIN (SELECT DISTINCT tenant_id, license_id, application_id FROM license_applications) l
        USING (tenant_id, application_id)
    GROUP BY ALL
), totals AS (
    SELECT tenant_id, license_id, sum(consumption) AS consumed, count(*) AS consumers
    FROM consumer_rows GROUP BY ALL
)
SELECT lic.tenant_id, lic.license_id,
       coalesce(t.consumed, 0)::DOUBLE AS consumed,
       CASE WHEN lic.entitlements IS NULL THEN 0
            ELSE greatest(0, coalesce(t.consumed, 0) - lic.entitlements) END::DOUBLE AS shortfall,
       coalesce(t.consumers, 0)::BIGINT AS consumers,
       coalesce(e.evidence, 0)::BIGINT AS evidence
FROM licenses lic
LEFT JOIN totals t USING (tenant_id, license_id)
LEFT JOIN evidence e USING (tenant_id, license_id)
"""


def _arrow(relation) -> pa.Table:
    """The relation as an Arrow table (``to_arrow_table`` in DuckDB >= 1.4, else ``fetch_arrow_table``)."""
    fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
    return fetch()


def consumption(tables: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """``consumption`` and ``license_summary`` (peer columns) of a restricted dataset."""
    con = duckdb.connect()
    try:
        for name in INPUTS:
            con.register(name, tables[name])
        con.execute(CONSUMERS_SQL)
        return {"consumption": _arrow(con.sql("SELECT * FROM consumer_rows")),
                "license_summary": _arrow(con.sql(SUMMARY_SQL))}
    finally:
        con.close()
