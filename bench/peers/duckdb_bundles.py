"""Bundle resolution of the restricted workload (``workload.restricted_bundle_workload``) in DuckDB SQL.

Group closure by a recursive CTE from the groups the rules name (``UNION``, so nesting cycles
terminate); members of person, group and role actors limited to ``people``; resultant = assign
minus exclude; statuses disabled / no_account, then the bundle capacity by ``row_number()`` over
current holders first, then person_id; pools are unlimited in the restricted shape. Fulfillment per
license group that some bundle maps to: adds = granted accounts not in the group (naming the first
granting bundle by bundle_id), removes = current accounts no bundle of the group grants.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pyarrow as pa

INPUTS = ("people", "group_members", "role_members", "bundles", "bundle_rules",
          "license_group_members")

ASSIGNEES_SQL = """
CREATE TEMP TABLE assignees AS
WITH RECURSIVE rules AS (
    SELECT DISTINCT tenant_id, bundle_id, rule, actor_type, actor_id FROM bundle_rules
    WHERE rule IN ('assign', 'exclude') AND actor_type IN ('person', 'group', 'role')
), persons AS (
    SELECT tenant_id, person_id, account_id, coalesce(enabled, true) AS enabled FROM people
), gm AS (
    SELECT DISTINCT tenant_id, group_id, member_type, member_id FROM group_members
), reach(tenant_id, root, grp) AS (
    SELECT DISTINCT tenant_id, actor_id, actor_id FROM rules WHERE actor_type = 'group'
    UNION
    SELECT r.tenant_id, r.root, g.member_id
    FROM reach r JOIN gm g
        ON g.tenant_id = r.tenant_id AND g.group_id = r.grp AND g.member_type = 'group'
), members AS (
    SELECT r.tenant_id, 'group' AS actor_type, r.root AS actor_id, g.member_id AS person_id
    FROM reach r JOIN gm g
        ON g.tenant_id = r.tenant_id AND g.group_id = r.grp AND g.member_type = 'person'
    UNION ALL
    SELECT tenant_id, 'role', role_id, person_id FROM role_members
    UNION ALL
    SELECT DISTINCT tenant_id, 'person', actor_id, actor_id FROM rules WHERE actor_type = 'person'
), rule_people AS (
    SELECT DISTINCT ru.tenant_id, ru.bundle_id, ru.rule, m.person_id
    FROM rules ru
    JOIN members m USING (tenant_id, actor_type, actor_id)
    SEMI JOIN persons p USING (tenant_id, person_id)
), resultant AS (
    SELECT tenant_id, bundle_id, person_id FROM rule_people WHERE rule = 'assign'
    EXCEPT
    SELECT tenant_id, bundle_id, person_id FROM rule_people WHERE rule = 'exclude'
), current_members AS (
    SELECT DISTINCT tenant_id, license_group_id, account_id FROM license_group_members
), candidates AS (
    SELECT r.tenant_id, r.bundle_id, r.person_id, p.account_id, b.capacity,
           CASE WHEN NOT p.enabled THEN 'disabled'
                WHEN p.account_id IS NULL THEN 'no_account' END AS unfulfillable,
           c.account_id IS NOT NULL AS holder
    FROM resultant r
    JOIN persons p USING (tenant_id, person_id)
    JOIN bundles b USING (tenant_id, bundle_id)
    LEFT JOIN current_members c ON c.tenant_id = r.tenant_id
        AND c.license_group_id = b.license_group_id AND c.account_id = p.account_id
)
SELECT tenant_id, bundle_id, person_id, account_id,
       CASE WHEN unfulfillable IS NOT NULL THEN unfulfillable
            WHEN capacity IS NULL OR row_number() OVER (
                PARTITION BY tenant_id, bundle_id, unfulfillable IS NULL
                ORDER BY holder DESC, person_id) <= capacity THEN 'granted'
            ELSE 'over_bundle_capacity' END AS status
FROM candidates
"""

FULFILLMENT_SQL = """
WITH current_members AS (
    SELECT DISTINCT tenant_id, license_group_id, account_id FROM license_group_members
), mapped AS (
    SELECT DISTINCT tenant_id, license_group_id FROM bundles
), desired AS (
    SELECT a.tenant_id, b.license_group_id, a.account_id, min(a.bundle_id) AS bundle_id
    FROM assignees a JOIN bundles b USING (tenant_id, bundle_id)
    WHERE a.status = 'granted'
    GROUP BY ALL
)
SELECT d.tenant_id, d.license_group_id, 'add' AS op, d.account_id, d.bundle_id
FROM desired d ANTI JOIN current_members c USING (tenant_id, license_group_id, account_id)
UNION ALL
SELECT c.tenant_id, c.license_group_id, 'remove' AS op, c.account_id, NULL AS bundle_id
FROM current_members c
SEMI JOIN mapped m USING (tenant_id, license_group_id)
ANTI JOIN desired d USING (tenant_id, license_group_id, account_id)
"""


def _arrow(relation) -> pa.Table:
    """The relation as an Arrow table (``to_arrow_table`` in DuckDB >= 1.4, else ``fetch_arrow_table``)."""
    fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
    return fetch()


def resolve(tables: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """``bundle_assignees`` and ``fulfillment`` (peer columns) of a restricted dataset."""
    con = duckdb.connect()
    try:
        for name in INPUTS:
            con.register(name, tables[name])
        con.execute(ASSIGNEES_SQL)
        return {"bundle_assignees": _arrow(con.sql("SELECT * FROM assignees")),
                "fulfillment": _arrow(con.sql(FULFILLMENT_SQL))}
    finally:
        con.close()
