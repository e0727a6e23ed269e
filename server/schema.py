"""Input and output tables of SPEC.md, as data: column names, types, defaults and checks.

Validation, the Arrow adaptor and the data generator read these specs, so a column is
described in one place only.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

REQUIRED = object()  # marks a column without a default

# Id kinds: every column of one kind must have the same Arrow type across tables.
# Users and devices share one kind ("party") because allocation targets hold either and the
# free-pair order compares user ids with device ids.
PARTY, APPLICATION, LICENSE = "party", "application", "license"
# Section 3: member_id and actor_id hold persons, groups, roles, business roles and collections,
# so all of those are one kind ("principal").
PRINCIPAL, ACCOUNT, LOCATION, POOL, BUNDLE, LICENSE_GROUP, SKU = (
    "principal", "account", "location", "pool", "bundle", "license_group", "sku",
)


@dataclass(frozen=True)
class Column:
    """One column of a SPEC table.

    ``kind`` is one of: "tenant", "id", "string", "enum", "bool", "int32", "int64", "float64",
    "timestamp", "string_list". ``id_kind`` names the key space of an id column; ``values`` the allowed enum
    values; ``minimum`` a lower bound for numbers.
    """

    name: str
    kind: str
    default: object = REQUIRED
    id_kind: str | None = None
    values: tuple[str, ...] = ()
    minimum: float | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def _tenant() -> Column:
    return Column("tenant_id", "tenant")


def _id(name: str, id_kind: str, default: object = REQUIRED) -> Column:
    return Column(name, "id", default, id_kind=id_kind)


CONSUMPTION_INPUTS: dict[str, tuple[Column, ...]] = {
    "users": (
        _tenant(),
        _id("user_id", PARTY),
        Column("status", "enum", "active", values=("active", "inactive", "retired")),
        Column("org_unit", "string", None),
        Column("account_enabled", "bool", None),
        Column("last_sign_in", "timestamp", None),
    ),
    "devices": (
        _tenant(),
        _id("device_id", PARTY),
        _id("user_id", PARTY, None),
        _id("host_id", PARTY, None),
        Column("cores", "int32", None, minimum=0),
    ),
    "installations": (
        _tenant(),
        _id("device_id", PARTY),
        _id("application_id", APPLICATION),
    ),
    "licenses": (
        _tenant(),
        _id("license_id", LICENSE),
        Column("metric", "enum", values=("device", "user", "core")),
        Column("entitlements", "int64", None, minimum=0),
        Column("multiple_use", "int32", 1, minimum=0),
        Column("allocations_consume", "bool", False),
        Column("vm_rights", "enum", "none", values=("none", "host")),
        Column("priority", "int32", 0),
        Column("true_up", "bool", False),
        Column("unit_cost", "float64", 0.0, minimum=0),
        Column("points_per_core", "float64", 1.0, minimum=0),
        Column("min_points", "float64", 0.0, minimum=0),
        Column("sku_id", "string", None),
    ),
    "license_applications": (
        _tenant(),
        _id("license_id", LICENSE),
        _id("application_id", APPLICATION),
    ),
    "allocations": (
        _tenant(),
        _id("license_id", LICENSE),
        _id("target_id", PARTY),
        Column(
            "type",
            "enum",
            "allocated",
            values=("allocated", "permanent", "awaiting_inventory", "unallocated"),
        ),
        Column("override", "float64", None, minimum=0),
        Column("exemption", "string", None),
    ),
}

RECONCILIATION_INPUTS: dict[str, tuple[Column, ...]] = {
    "directory_licenses": (
        _tenant(),
        _id("user_id", PARTY),
        Column("sku_id", "string"),
        Column("assigned_by_group", "string", None),
        Column("state", "string", None),
    ),
}

ACTOR_TYPES = ("person", "group", "role", "business_role", "collection")
RULES = ("assign", "exclude", "eligible", "exclude_eligible")

BUNDLE_INPUTS: dict[str, tuple[Column, ...]] = {
    # Any other column of `people` is an attribute for collection filters (string, bool, numeric).
    "people": (
        _tenant(),
        _id("person_id", PRINCIPAL),
        _id("account_id", ACCOUNT, None),
        Column("enabled", "bool", True),
        _id("business_role_id", PRINCIPAL, None),
        _id("location_id", LOCATION, None),
    ),
    "locations": (
        _tenant(),
        _id("location_id", LOCATION),
        _id("parent_id", LOCATION, None),
    ),
    "group_members": (
        _tenant(),
        _id("group_id", PRINCIPAL),
        Column("member_type", "enum", values=("person", "group")),
        _id("member_id", PRINCIPAL),
    ),
    "role_members": (
        _tenant(),
        _id("role_id", PRINCIPAL),
        _id("person_id", PRINCIPAL),
    ),
    "collections": (
        _tenant(),
        _id("collection_id", PRINCIPAL),
        Column("filter", "string"),
    ),
    "pools": (
        _tenant(),
        _id("pool_id", POOL),
        _id("sku_id", SKU),
        Column("capacity", "int64", None, minimum=0),
        Column("unit_price", "float64", 0.0, minimum=0),
    ),
    "bundles": (
        _tenant(),
        _id("bundle_id", BUNDLE),
        _id("pool_id", POOL),
        _id("license_group_id", LICENSE_GROUP),
        Column("capacity", "int64", None, minimum=0),
        Column("disabled_plans", "string_list", None),
        Column("revoke_threshold", "int64", None, minimum=0),
    ),
    "bundle_rules": (
        _tenant(),
        _id("bundle_id", BUNDLE),
        Column("rule", "enum", values=RULES),
        Column("actor_type", "enum", values=ACTOR_TYPES),
        _id("actor_id", PRINCIPAL),
        _id("location_id", LOCATION, None),
    ),
    "license_group_members": (
        _tenant(),
        _id("license_group_id", LICENSE_GROUP),
        _id("account_id", ACCOUNT),
    ),
    "skus": (
        _tenant(),
        _id("sku_id", SKU),
        Column("enabled_units", "int64", None, minimum=0),
    ),
    "sku_conflicts": (
        _tenant(),
        _id("sku_a", SKU),
        _id("sku_b", SKU),
    ),
}

BUNDLE_STATUSES = ("granted", "over_bundle_capacity", "over_pool_capacity", "disabled", "no_account")

# Output schemas; id columns (marked pa.null()) take the type of the input ids of their kind.
ID = pa.null()
CONSUMPTION_OUTPUTS: dict[str, tuple[tuple[str, pa.DataType, str | None], ...]] = {
    "consumption": (
        ("tenant_id", pa.string(), None),
        ("license_id", ID, LICENSE),
        ("consumer_type", pa.string(), None),
        ("consumer_id", ID, PARTY),
        ("devices", pa.int64(), None),
        ("consumption", pa.float64(), None),
        ("reason", pa.string(), None),
        ("allocation", pa.string(), None),
        ("over_utilized", pa.bool_(), None),
    ),
    "license_summary": (
        ("tenant_id", pa.string(), None),
        ("license_id", ID, LICENSE),
        ("metric", pa.string(), None),
        ("entitlements", pa.int64(), None),
        ("consumed", pa.float64(), None),
        ("available", pa.float64(), None),
        ("shortfall", pa.float64(), None),
        ("shortfall_cost", pa.float64(), None),
        ("consumers", pa.int64(), None),
        ("evidence", pa.int64(), None),
        ("over_utilized", pa.int64(), None),
    ),
    "unlicensed": (
        ("tenant_id", pa.string(), None),
        ("device_id", ID, PARTY),
        ("application_id", ID, APPLICATION),
    ),
    "chargeback": (
        ("tenant_id", pa.string(), None),
        ("license_id", ID, LICENSE),
        ("org_unit", pa.string(), None),
        ("consumption", pa.float64(), None),
        ("cost", pa.float64(), None),
    ),
}

BUNDLE_OUTPUTS: dict[str, tuple[tuple[str, pa.DataType, str | None], ...]] = {
    "bundle_assignees": (
        ("tenant_id", pa.string(), None),
        ("bundle_id", ID, BUNDLE),
        ("person_id", ID, PRINCIPAL),
        ("account_id", ID, ACCOUNT),
        ("status", pa.string(), None),
    ),
    "fulfillment": (
        ("tenant_id", pa.string(), None),
        ("license_group_id", ID, LICENSE_GROUP),
        ("op", pa.string(), None),
        ("account_id", ID, ACCOUNT),
        ("bundle_id", ID, BUNDLE),
        ("status", pa.string(), None),
    ),
    "bundle_summary": (
        ("tenant_id", pa.string(), None),
        ("bundle_id", ID, BUNDLE),
        ("pool_id", ID, POOL),
        ("assigned", pa.int64(), None),
        ("excluded", pa.int64(), None),
        ("resultant", pa.int64(), None),
        ("granted", pa.int64(), None),
        ("over_capacity", pa.int64(), None),
        ("adds", pa.int64(), None),
        ("removes", pa.int64(), None),
    ),
    "pool_summary": (
        ("tenant_id", pa.string(), None),
        ("pool_id", ID, POOL),
        ("sku_id", ID, SKU),
        ("capacity", pa.int64(), None),
        ("bundle_capacity", pa.int64(), None),
        ("granted", pa.int64(), None),
        ("over_capacity", pa.int64(), None),
        ("monthly_cost", pa.float64(), None),
        ("annual_cost", pa.float64(), None),
        ("overcommitted", pa.bool_(), None),
    ),
    "sku_summary": (
        ("tenant_id", pa.string(), None),
        ("sku_id", ID, SKU),
        ("enabled_units", pa.int64(), None),
        ("seats", pa.int64(), None),
        ("shortfall", pa.int64(), None),
    ),
    "eligibility": (
        ("tenant_id", pa.string(), None),
        ("bundle_id", ID, BUNDLE),
        ("person_id", ID, PRINCIPAL),
    ),
    "conflicts": (
        ("tenant_id", pa.string(), None),
        ("person_id", ID, PRINCIPAL),
        ("kind", pa.string(), None),
        ("sku_ids", pa.list_(pa.string()), None),
        ("bundle_ids", pa.list_(pa.string()), None),
    ),
    "warnings": (
        ("tenant_id", pa.string(), None),
        ("table", pa.string(), None),
        ("kind", pa.string(), None),
        ("id", pa.string(), None),
        ("message", pa.string(), None),
    ),
}

RECONCILIATION_REASONS = (
    "exempt", "override", "multiple_use_overflow", "unknown_user_device", "not_in_directory",
    "not_consumed", "other",
)
RECLAIM_REASONS = ("disabled", "inactive", "never_signed_in")
RECONCILIATION_OUTPUTS: dict[str, tuple[tuple[str, pa.DataType, str | None], ...]] = {
    "reconciliation": (
        ("tenant_id", pa.string(), None),
        ("sku_id", pa.string(), None),
        ("directory_seats", pa.int64(), None),
        ("computed", pa.float64(), None),
        ("difference", pa.float64(), None),
    ),
    "reconciliation_detail": (
        ("tenant_id", pa.string(), None),
        ("sku_id", pa.string(), None),
        ("consumer_id", ID, PARTY),
        ("directory_seats", pa.int64(), None),
        ("computed", pa.float64(), None),
        ("difference", pa.float64(), None),
        ("reason", pa.string(), None),
    ),
    "reclaim": (
        ("tenant_id", pa.string(), None),
        ("sku_id", pa.string(), None),
        ("user_id", ID, PARTY),
        ("reason", pa.string(), None),
        ("last_sign_in", pa.timestamp("us", tz="UTC"), None),
        ("monthly_cost", pa.float64(), None),
    ),
}
