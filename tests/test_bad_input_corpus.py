"""The bad-input corpus: hostile and broken requests over gRPC, one table of cases.

Every case goes to one in-process server (started once for the module) and asserts the exact
status code and the ``google.rpc`` details the caller sees: the ErrorInfo reason and metadata
(table, column, row, value, count for bad input; the dataset id for an unknown handle) and, for bad
input, the BadRequest field. A case built from tables is also run in-process and must fail with the
same message (the server adds nothing and loses nothing). The few legal-but-hostile cases (group
cycles, a 10 MB id, a huge numeric literal) must equal the in-process result. After all of them the
server still reports SERVING and computes a good dataset exactly.

The cases cover every input table of SPEC sections 1, 2 and 3, the chunk stream itself (corrupt,
truncated, repeated, unknown, unfinished), the options of the inline calls, collection filters,
the server limits (a stream that never ends, a row count beyond ``max_rows``, a message beyond
gRPC's maximum) and dataset handles (unknown, empty, a path, injection text).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.rpc import error_details_pb2

from licensecore import wire
from licensecore.clients import LicenseCoreClient, LicenseCoreServerError
from licensecore.clients.errors import error_from_rpc
from licensecore.server.app import create_server
from licensecore.server.bundles import resolve_bundles
from licensecore.server.consumption import compute_consumption
from licensecore.server.errors import InputError
from licensecore.server.limits import Limits, MiB
from licensecore.server.reconciliation import reconcile
from licensecore.server.whatif import Scenario, what_if
from licensecore.v1 import licensecore_pb2 as pb
from licensecore.v1 import licensecore_pb2_grpc as pb_grpc

from test_validation import Data, Mutation, append, base, both, build, cell, drop, put

T = "t1"
# The corpus server's limits: small enough to reach quickly, large enough for the legal cases.
LIMITS = Limits(max_request_bytes=64 * MiB, max_rows=1_000_000)
HUGE_ID = "x" * (10 << 20)  # a 10 MB id
AS_OF = {"as_of": dt.datetime(2026, 1, 1)}  # reconcile deterministically


# ----- valid bases, one per SPEC section ----------------------------------------------------------


def directory_base() -> Data:
    """SPEC 2: the section 1 base plus directory seats (u9 is not in `users`: that is legal)."""
    d = base()
    d["directory_licenses"] = {"tenant_id": [T, T, T], "user_id": ["u1", "u2", "u9"],
                               "sku_id": ["E3", "E3", "E5"]}
    return d


def bundle_base() -> Data:
    """SPEC 3: people p1..p4 in a location tree, nested groups, a role, a collection, one pool,
    two bundles with every actor type, current license-group members, a SKU and a conflict."""
    return {
        "people": {"tenant_id": [T] * 4, "person_id": ["p1", "p2", "p3", "p4"],
                   "account_id": ["a1", "a2", "a3", "a4"], "enabled": [True, True, False, True],
                   "business_role_id": ["dev", "dev", None, "ops"],
                   "location_id": ["berlin", "munich", None, "berlin"],
                   "dept": ["eng", "eng", "ops", None]},
        "locations": {"tenant_id": [T] * 3, "location_id": ["de", "berlin", "munich"],
                      "parent_id": [None, "de", "de"]},
        "group_members": {"tenant_id": [T] * 4, "group_id": ["staff", "staff", "staff", "interns"],
                          "member_type": ["person", "person", "group", "person"],
                          "member_id": ["p1", "p2", "interns", "p4"]},
        "role_members": {"tenant_id": [T], "role_id": ["mgr"], "person_id": ["p3"]},
        "collections": {"tenant_id": [T], "collection_id": ["engineers"], "filter": ["dept == 'eng'"]},
        "pools": {"tenant_id": [T], "pool_id": ["E3-pool"], "sku_id": ["E3"], "capacity": [10],
                  "unit_price": [8.0]},
        "bundles": {"tenant_id": [T, T], "bundle_id": ["std", "eng"],
                    "pool_id": ["E3-pool", "E3-pool"], "license_group_id": ["lg-std", "lg-eng"],
                    "capacity": [5, None], "revoke_threshold": [None, 3]},
        "bundle_rules": {"tenant_id": [T] * 4, "bundle_id": ["std", "std", "eng", "eng"],
                         "rule": ["assign", "exclude", "assign", "eligible"],
                         "actor_type": ["group", "role", "collection", "business_role"],
                         "actor_id": ["staff", "mgr", "engineers", "dev"],
                         "location_id": [None, None, None, "de"]},
        "license_group_members": {"tenant_id": [T, T], "license_group_id": ["lg-std", "lg-std"],
                                  "account_id": ["a1", "a9"]},
        "skus": {"tenant_id": [T], "sku_id": ["E3"], "enabled_units": [5]},
        "sku_conflicts": {"tenant_id": [T], "sku_a": ["E3"], "sku_b": ["E5"]},
    }


def filter_is(text: str) -> Mutation:
    return put("collections", "filter", [text])


# ----- the calls ----------------------------------------------------------------------------------

# name -> (in-process function, client call); "_handle" calls upload first, then compute by handle.
Compute = Callable[[Mapping[str, pa.Table]], dict[str, pa.Table]]
ANALYSES: dict[str, tuple[Compute, Callable[..., dict[str, pa.Table]]]] = {
    "consume": (compute_consumption, LicenseCoreClient.compute_consumption),
    "reconcile": (lambda t, **o: reconcile(t, **o), LicenseCoreClient.reconcile),
    "bundles": (lambda t, **o: resolve_bundles(t, **o), LicenseCoreClient.resolve_bundles),
}


@dataclass(frozen=True)
class Case:
    """One request and the answer it must get.

    ``send(client, stub)`` makes the call. ``code`` None means the call is legal and its outputs
    must equal ``want()``. Otherwise ``reason`` and ``metadata`` are the exact ErrorInfo (no
    ErrorInfo at all when ``reason`` is empty),
    ``violation`` the BadRequest field (bad input only) and ``phrase`` a part of the message;
    ``in_process`` (tables cases) must raise an ``InputError`` with the same message.
    """

    id: str
    send: Callable[[LicenseCoreClient, pb_grpc.LicenseCoreStub], Any]
    code: grpc.StatusCode | None
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    violation: str | None = None
    phrase: str = ""
    in_process: Callable[[], Any] | None = None
    want: Callable[[], dict[str, pa.Table]] | None = None


def _clipped(text: str) -> str:
    """A detail text as the server sends it: at most 240 characters, then the length."""
    return text if len(text) <= 240 else f"{text[:240]}... ({len(text):,} characters)"


def _bad_input(table: str, column: str, row: int, value: Any, count: int) -> dict[str, str]:
    return {"table": table, "column": column, "row": str(row),
            "value": "" if value is None else _clipped(str(value)), "count": str(count)}


def _run(analysis: str, data: Data, handle: bool, options: dict):
    compute, call = ANALYSES[analysis]
    tables = build(data)

    def send(client: LicenseCoreClient, stub) -> dict[str, pa.Table]:
        return call(client, client.upload(tables) if handle else tables, **options)

    return send, (lambda: compute(tables, **options))


def bad(id: str, analysis: str, data: Data, expected: tuple[str, str, int, Any, int], *,
        handle: bool = False, phrase: str = "", **options: Any) -> Case:
    """A table-level bad input: INVALID_ARGUMENT naming (table, column, row, value, count)."""
    send, in_process = _run(analysis, data, handle, options)
    table, column = expected[:2]
    return Case(id, send, grpc.StatusCode.INVALID_ARGUMENT, "BAD_INPUT", _bad_input(*expected),
                f"{table}.{column}" if column else table, phrase, in_process)


def bad_upload(id: str, data: Data, expected: tuple[str, str, int, Any, int]) -> Case:
    """Bad input that Upload itself refuses (it stores only what it can account to tenants)."""
    tables = build(data)
    table, column = expected[:2]
    return Case(id, lambda client, stub: client.upload(tables), grpc.StatusCode.INVALID_ARGUMENT,
                "BAD_INPUT", _bad_input(*expected), f"{table}.{column}", "tenant_id must be text")


def legal(id: str, analysis: str, data: Data, *, handle: bool = False, **options: Any) -> Case:
    """A hostile but legal request: its outputs equal the in-process ones."""
    send, in_process = _run(analysis, data, handle, options)
    return Case(id, send, None, want=in_process)


def mutated(make: Callable[[], Data], *mutations: Mutation) -> Data:
    data = make()
    both(*mutations)(data)
    return data


def s1(*mutations: Mutation) -> Data:
    return mutated(base, *mutations)


def s2(*mutations: Mutation) -> Data:
    return mutated(directory_base, *mutations)


def s3(*mutations: Mutation) -> Data:
    return mutated(bundle_base, *mutations)


def bad_stream(id: str, rpc: str, chunks: list[pb.TableChunk], table: str, phrase: str) -> Case:
    """A broken chunk stream: INVALID_ARGUMENT naming the table, row -1, no value, count 0."""

    def send(client: LicenseCoreClient, stub: pb_grpc.LicenseCoreStub) -> Any:
        if rpc == "Upload":
            return stub.Upload(iter([pb.UploadRequest(chunk=c) for c in chunks]))
        return list(stub.ComputeConsumptionInline(iter(chunks)))

    return Case(id, send, grpc.StatusCode.INVALID_ARGUMENT, "BAD_INPUT",
                _bad_input(table, "", -1, None, 0), table, phrase)


def options_after_chunks(id: str, rpc: str, data: Data, options: Any) -> Case:
    """An inline stream whose options message comes after its first chunk."""
    request = getattr(pb, f"{rpc}InlineRequest")

    def send(client: LicenseCoreClient, stub: pb_grpc.LicenseCoreStub) -> Any:
        chunks = [request(chunk=c) for c in wire.encode_tables(build(data))]
        return list(getattr(stub, f"{rpc}Inline")(iter([chunks[0], request(options=options),
                                                        *chunks[1:]])))

    return Case(id, send, grpc.StatusCode.INVALID_ARGUMENT, "BAD_INPUT",
                _bad_input("options", "", -1, None, 0), "options", "options must come first")


def unknown_dataset(id: str, method: str, dataset_id: str) -> Case:
    """A by-handle call on a handle the server never gave out: NOT_FOUND naming the handle."""

    def send(client: LicenseCoreClient, stub: pb_grpc.LicenseCoreStub) -> Any:
        return list(getattr(stub, method)(getattr(pb, f"{method}Request")(dataset_id=dataset_id)))

    return Case(id, send, grpc.StatusCode.NOT_FOUND, "DATASET_NOT_FOUND",
                {"dataset_id": _clipped(dataset_id)}, phrase="unknown dataset")


def beyond_limit(id: str, rpc: str, chunks: Callable[[], Iterator[pb.TableChunk]],
                 metadata: dict[str, str], phrase: str = "") -> Case:
    """A stream beyond a server limit: RESOURCE_EXHAUSTED with ErrorInfo LIMIT_EXCEEDED naming the
    limit, its maximum and the value asked (no ErrorInfo when gRPC itself refuses a message)."""

    def send(client: LicenseCoreClient, stub: pb_grpc.LicenseCoreStub) -> Any:
        if rpc == "Upload":
            return stub.Upload(pb.UploadRequest(chunk=c) for c in chunks())
        return list(stub.ComputeConsumptionInline(chunks()))

    return Case(id, send, grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_EXCEEDED" if metadata else "",
                metadata, phrase=phrase)


def endless() -> Iterator[pb.TableChunk]:
    """A table whose last chunk never comes."""
    while True:
        yield ENDLESS_CHUNK


ENDLESS_CHUNK = pb.TableChunk(table="installations", data=bytes(wire.CHUNK_BYTES))


def _cut_at(message_bytes: int) -> int:
    """The request bytes counted when an endless stream of ``message_bytes`` messages is cut."""
    return (LIMITS.max_request_bytes // message_bytes + 1) * message_bytes


def _chunks(name: str, table: pa.Table) -> list[pb.TableChunk]:
    return list(wire.table_chunks(name, table))


def _ipc(table: pa.Table) -> bytes:
    return b"".join(c.data for c in _chunks("users", table))


def _file_format(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


USERS = build(base())["users"]
LICENSES = build(base())["licenses"]


def _bad_utf8(table: pa.Table, column: str) -> pa.Table:
    """``table`` with the last value of a string ``column`` made invalid UTF-8 (Arrow's basic
    validation passes; only the full one reads the bytes)."""
    values = table.column(column).combine_chunks()
    _, offsets, data = values.buffers()
    raw = bytearray(data.to_pybytes())
    raw[-1] = 0xFF
    broken = pa.Array.from_buffers(pa.string(), len(values), [None, offsets, pa.py_buffer(bytes(raw))])
    return table.set_column(table.schema.get_field_index(column), column, broken)


def _last(data: bytes, table: str = "users", rows: int = 3) -> list[pb.TableChunk]:
    return [pb.TableChunk(table=table, data=data, last=True, row_count=rows)]


# ----- the corpus ---------------------------------------------------------------------------------

DEEP = "(" * 65 + "dept == 'eng'" + ")" * 65
INJECTION = "dept == 'eng'; DROP TABLE people; --"

CASES: list[Case] = [
    # SPEC 1.1 users
    bad("users-missing-user_id", "consume", s1(drop("users", "user_id")), ("users", "user_id", -1, None, 3)),
    bad("users-tenant_id-int64", "consume", s1(put("users", "tenant_id", [1, 1, 1])),
        ("users", "tenant_id", -1, None, 3), handle=True),
    bad("users-null-user_id", "consume", s1(cell("users", "user_id", 1, None)), ("users", "user_id", 1, None, 1)),
    bad("users-status-uppercase", "consume", s1(cell("users", "status", 2, "Retired")),
        ("users", "status", 2, "Retired", 1), handle=True),
    bad("users-duplicate-user_id", "consume", s1(append("users", user_id="u2")), ("users", "user_id", 3, "u2", 1)),
    bad("users-last_sign_in-string", "consume", s1(put("users", "last_sign_in", ["2024-01-01", None, None])),
        ("users", "last_sign_in", -1, None, 3)),
    # a huge offending value is clipped in the answer, which keeps its table, column and row
    bad("users-duplicate-10MB-id", "consume", s1(put("users", "user_id", [HUGE_ID, HUGE_ID, "u3"])),
        ("users", "user_id", 1, HUGE_ID, 1)),
    bad("collections-filter-9000-chars-unknown-column", "bundles", s3(filter_is("x" * 9000 + " == 1")),
        ("collections", "filter", 0, "x" * 9000 + " == 1", 1), phrase="unknown column"),
    bad("users-huge-id-beside-a-null", "consume",
        s1(put("users", "user_id", [HUGE_ID, None, "u3"])), ("users", "user_id", 1, None, 1)),
    bad_upload("upload-users-tenant_id-list", s1(put("users", "tenant_id", [["t1"], ["t1"], ["t1"]])),
               ("users", "tenant_id", -1, None, 3)),
    bad_upload("upload-devices-tenant_id-struct",
               s1(put("devices", "tenant_id", [{"t": "t1"}, {"t": "t1"}, {"t": "t1"}, {"t": "t1"}])),
               ("devices", "tenant_id", -1, None, 4)),
    # devices
    bad("devices-cores-string", "consume", s1(put("devices", "cores", ["4", "2", "2", None])),
        ("devices", "cores", -1, None, 4)),
    bad("devices-negative-cores", "consume", s1(cell("devices", "cores", 2, -2)), ("devices", "cores", 2, -2, 1),
        handle=True),
    bad("devices-cores-beyond-int32", "consume",
        s1(put("devices", "cores", pa.array([4, 2**40, 2, 2**33], pa.int64()))),
        ("devices", "cores", 1, 2**40, 2)),
    bad("devices-dangling-user_id", "consume", s1(cell("devices", "user_id", 1, "u9")),
        ("devices", "user_id", 1, "u9", 1)),
    bad("devices-dangling-host_id", "consume", s1(cell("devices", "host_id", 3, "d9")),
        ("devices", "host_id", 3, "d9", 1), handle=True),
    bad("devices-duplicate-device_id", "consume", s1(append("devices", device_id="d1")),
        ("devices", "device_id", 4, "d1", 1)),
    # installations
    bad("installations-missing-application_id", "consume", s1(drop("installations", "application_id")),
        ("installations", "application_id", -1, None, 4)),
    bad("installations-null-device_id", "consume", s1(cell("installations", "device_id", 3, None)),
        ("installations", "device_id", 3, None, 1)),
    bad("installations-device-in-another-tenant", "consume",
        s1(append("devices", tenant_id="t2", device_id="e1"), append("installations", device_id="e1",
                                                                    application_id="a1")),
        ("installations", "device_id", 4, "e1", 1), handle=True),
    bad("installations-int64-device_id-beside-string-ids", "consume",
        s1(put("installations", "device_id", [1, 2, 3, 4])), ("installations", "device_id", -1, None, 4)),
    # licenses
    bad("licenses-missing-metric", "consume", s1(drop("licenses", "metric")), ("licenses", "metric", -1, None, 3)),
    bad("licenses-unknown-metric", "consume", s1(cell("licenses", "metric", 2, "seat")),
        ("licenses", "metric", 2, "seat", 1)),
    bad("licenses-negative-entitlements", "consume", s1(put("licenses", "entitlements", [10, -1, -2])),
        ("licenses", "entitlements", 1, -1, 2), handle=True),
    bad("licenses-entitlements-float", "consume", s1(put("licenses", "entitlements", [10.0, 10.0, 10.0])),
        ("licenses", "entitlements", -1, None, 3)),
    bad("licenses-nan-unit_cost", "consume", s1(put("licenses", "unit_cost", [1.0, float("nan"), 2.0])),
        ("licenses", "unit_cost", 1, float("nan"), 1)),
    bad("licenses-unknown-vm_rights", "consume", s1(put("licenses", "vm_rights", ["none", "host", "guest"])),
        ("licenses", "vm_rights", 2, "guest", 1)),
    bad("licenses-duplicate-license_id", "consume", s1(append("licenses", license_id="L3", metric="device")),
        ("licenses", "license_id", 3, "L3", 1)),
    # license_applications
    bad("license_applications-dangling-license_id", "consume",
        s1(cell("license_applications", "license_id", 1, "L9")),
        ("license_applications", "license_id", 1, "L9", 1)),
    bad("license_applications-null-application_id", "consume",
        s1(cell("license_applications", "application_id", 0, None)),
        ("license_applications", "application_id", 0, None, 1), handle=True),
    # allocations
    bad("allocations-unknown-type", "consume", s1(cell("allocations", "type", 1, "reserved")),
        ("allocations", "type", 1, "reserved", 1)),
    bad("allocations-negative-override", "consume", s1(put("allocations", "override", [None, -1.0, 2.0])),
        ("allocations", "override", 1, -1.0, 1)),
    bad("allocations-duplicate-license-target", "consume",
        s1(append("allocations", license_id="L1", target_id="d1", type="permanent")),
        ("allocations", "target_id", 3, "d1", 1)),
    bad("allocations-user-license-targets-a-device", "consume", s1(cell("allocations", "target_id", 1, "d1")),
        ("allocations", "target_id", 1, "d1", 1), handle=True),
    bad("allocations-dangling-license_id", "consume", s1(cell("allocations", "license_id", 2, "L9")),
        ("allocations", "license_id", 2, "L9", 1)),
    # SPEC 2 directory_licenses (and section 1 tables through Reconcile)
    bad("directory_licenses-missing-sku_id", "reconcile", s2(drop("directory_licenses", "sku_id")),
        ("directory_licenses", "sku_id", -1, None, 3), **AS_OF),
    bad("directory_licenses-null-user_id", "reconcile", s2(cell("directory_licenses", "user_id", 2, None)),
        ("directory_licenses", "user_id", 2, None, 1), handle=True, **AS_OF),
    bad("directory_licenses-int64-user_id-beside-string-ids", "reconcile",
        s2(put("directory_licenses", "user_id", [1, 2, 9])),
        ("directory_licenses", "user_id", -1, None, 3), **AS_OF),
    bad("directory_licenses-sku_id-bool", "reconcile",
        s2(put("directory_licenses", "sku_id", [True, False, True])),
        ("directory_licenses", "sku_id", -1, None, 3), **AS_OF),
    bad("reconcile-negative-multiple_use", "reconcile", s2(put("licenses", "multiple_use", [1, 1, -5])),
        ("licenses", "multiple_use", 2, -5, 1), **AS_OF),
    bad("reconcile-negative-inactive_days", "reconcile", s2(), ("options", "inactive_days", -1, -1, 1),
        inactive_days=-1, **AS_OF),
    # SPEC 3.1 people, locations, groups, roles
    bad("people-missing-person_id", "bundles", s3(drop("people", "person_id")),
        ("people", "person_id", -1, None, 4)),
    bad("people-duplicate-person_id", "bundles", s3(append("people", person_id="p3")),
        ("people", "person_id", 4, "p3", 1), handle=True),
    bad("people-enabled-string", "bundles", s3(put("people", "enabled", ["yes", "yes", "no", "yes"])),
        ("people", "enabled", -1, None, 4)),
    bad("locations-cycle", "bundles", s3(cell("locations", "parent_id", 0, "munich")),
        ("locations", "parent_id", 0, "munich", 3)),
    bad("locations-self-parent", "bundles", s3(append("locations", location_id="hamburg", parent_id="hamburg")),
        ("locations", "parent_id", 3, "hamburg", 1), handle=True),
    bad("locations-dangling-parent_id", "bundles", s3(cell("locations", "parent_id", 2, "bavaria")),
        ("locations", "parent_id", 2, "bavaria", 1)),
    bad("group_members-unknown-member_type", "bundles", s3(cell("group_members", "member_type", 1, "user")),
        ("group_members", "member_type", 1, "user", 1)),
    legal("group_members-cycle-is-legal", "bundles",
          s3(append("group_members", group_id="interns", member_type="group", member_id="staff"),
             append("group_members", group_id="staff", member_type="group", member_id="staff"))),
    bad("role_members-null-person_id", "bundles", s3(cell("role_members", "person_id", 0, None)),
        ("role_members", "person_id", 0, None, 1)),
    # collections and their filters (SPEC 3.4)
    bad("collections-filter-injection", "bundles", s3(filter_is(INJECTION)),
        ("collections", "filter", 0, INJECTION, 1), phrase="unexpected character ';'"),
    bad("collections-filter-python-code", "bundles", s3(filter_is("__import__('os').system('id')")),
        ("collections", "filter", 0, "__import__('os').system('id')", 1), phrase="unknown column"),
    bad("collections-filter-deep-nesting", "bundles", s3(filter_is(DEEP)),
        ("collections", "filter", 0, DEEP, 1), handle=True, phrase="nesting deeper than 64"),
    bad("collections-filter-empty", "bundles", s3(filter_is("   ")),
        ("collections", "filter", 0, "   ", 1), phrase="empty filter"),
    bad("collections-filter-wrong-literal-type", "bundles", s3(filter_is("enabled == 'yes'")),
        ("collections", "filter", 0, "enabled == 'yes'", 1), phrase="true or false"),
    legal("collections-filter-huge-numeric-literal", "bundles",
          s3(put("people", "age", [30, 40, None, 50]),
             filter_is("age < 1" + "0" * 5000 + " and not age > -9" + "9" * 3000))),
    bad("collections-duplicate-collection_id", "bundles",
        s3(append("collections", collection_id="engineers", filter="dept is null")),
        ("collections", "collection_id", 1, "engineers", 1)),
    # pools, bundles, rules, groups, SKUs
    bad("pools-negative-capacity", "bundles", s3(put("pools", "capacity", [-1])), ("pools", "capacity", 0, -1, 1)),
    bad("pools-duplicate-pool_id", "bundles", s3(append("pools", pool_id="E3-pool", sku_id="E5")),
        ("pools", "pool_id", 1, "E3-pool", 1)),
    bad("bundles-dangling-pool_id", "bundles", s3(cell("bundles", "pool_id", 1, "E5-pool")),
        ("bundles", "pool_id", 1, "E5-pool", 1), handle=True),
    bad("bundles-negative-revoke_threshold", "bundles", s3(put("bundles", "revoke_threshold", [None, -3])),
        ("bundles", "revoke_threshold", 1, -3, 1)),
    bad("bundles-disabled_plans-int-list", "bundles", s3(put("bundles", "disabled_plans", [[1], [2, 3]])),
        ("bundles", "disabled_plans", -1, None, 2)),
    bad("bundle_rules-unknown-rule", "bundles", s3(cell("bundle_rules", "rule", 3, "grant")),
        ("bundle_rules", "rule", 3, "grant", 1)),
    bad("bundle_rules-unknown-actor_type", "bundles", s3(cell("bundle_rules", "actor_type", 0, "department")),
        ("bundle_rules", "actor_type", 0, "department", 1)),
    bad("bundle_rules-dangling-bundle_id", "bundles", s3(cell("bundle_rules", "bundle_id", 2, "gold")),
        ("bundle_rules", "bundle_id", 2, "gold", 1)),
    bad("license_group_members-missing-account_id", "bundles", s3(drop("license_group_members", "account_id")),
        ("license_group_members", "account_id", -1, None, 2)),
    bad("skus-negative-enabled_units", "bundles", s3(put("skus", "enabled_units", [-5])),
        ("skus", "enabled_units", 0, -5, 1)),
    bad("sku_conflicts-missing-sku_b", "bundles", s3(drop("sku_conflicts", "sku_b")),
        ("sku_conflicts", "sku_b", -1, None, 1)),
    bad("bundles-negative-max_remove_fraction", "bundles", s3(), ("options", "max_remove_fraction", -1, -0.5, 1),
        max_remove_fraction=-0.5),
    bad("bundles-nan-max_remove_fraction", "bundles", s3(), ("options", "max_remove_fraction", -1, float("nan"), 1),
        handle=True, max_remove_fraction=float("nan")),
    bad("bundles-negative-guard_min_members", "bundles", s3(), ("options", "guard_min_members", -1, -5, 1),
        guard_min_members=-5),
    # huge strings that are legal: a 10 MB id travels in 1 MiB chunks both ways
    legal("huge-10MB-user_id", "consume",
          s1(cell("users", "user_id", 0, HUGE_ID), cell("devices", "user_id", 0, HUGE_ID),
             cell("devices", "user_id", 3, HUGE_ID), cell("allocations", "target_id", 1, HUGE_ID)),
          handle=True),
    # the chunk stream itself
    bad_stream("ipc-not-arrow", "Upload", _last(b"this is not an arrow stream"), "users",
               "corrupt or truncated"),
    bad_stream("ipc-truncated", "ComputeConsumptionInline", _last(_ipc(USERS)[:-100]), "users",
               "corrupt or truncated"),
    bad_stream("ipc-cut-after-the-schema", "Upload", _last(_ipc(USERS)[:200]), "users",
               "corrupt or truncated"),
    bad_stream("ipc-file-format-not-stream", "ComputeConsumptionInline", _last(_file_format(USERS)),
               "users", "corrupt or truncated"),
    bad_stream("ipc-parquet-bytes", "Upload", _last(_parquet(USERS)), "users", "corrupt or truncated"),
    bad_stream("ipc-invalid-utf8", "ComputeConsumptionInline", _last(_ipc(_bad_utf8(USERS, "user_id"))),
               "users", "corrupt or truncated"),
    bad_stream("ipc-stray-bytes", "Upload", _last(_ipc(USERS) + b"\0junk"), "users", "stray byte"),
    bad_stream("ipc-row-count-lies", "ComputeConsumptionInline", _last(_ipc(USERS), rows=1000), "users",
               "1000 sent"),
    bad_stream("table-sent-twice", "Upload", _chunks("users", USERS) * 2, "users", "sent twice"),
    bad_stream("table-unknown", "Upload", _chunks("customers", USERS), "customers", "unknown table"),
    bad_stream("table-of-another-analysis", "ComputeConsumptionInline",
               _chunks("people", build(bundle_base())["people"]), "people", "unknown table"),
    bad_stream("table-without-name", "Upload", _last(_ipc(USERS), table=""), "", "without a table name"),
    bad_stream("stream-ends-before-last-chunk", "Upload",
               [pb.TableChunk(table="licenses", data=_ipc(LICENSES))], "licenses", "truncated"),
    options_after_chunks("bundle-options-after-chunks", "ResolveBundles", bundle_base(),
                         pb.BundleOptions(max_remove_fraction=0.1)),
    options_after_chunks("reconcile-options-after-chunks", "Reconcile", directory_base(),
                         pb.ReconcileOptions(inactive_days=30)),
    # server limits
    beyond_limit("stream-never-ends-upload", "Upload", endless,
                 {"limit": "max_request_bytes", "maximum": str(LIMITS.max_request_bytes),
                  "value": str(_cut_at(pb.UploadRequest(chunk=ENDLESS_CHUNK).ByteSize()))}),
    beyond_limit("stream-never-ends-inline", "ComputeConsumptionInline", endless,
                 {"limit": "max_request_bytes", "maximum": str(LIMITS.max_request_bytes),
                  "value": str(_cut_at(ENDLESS_CHUNK.ByteSize()))}),
    beyond_limit("row-count-beyond-max_rows", "Upload", lambda: iter(_last(_ipc(USERS), rows=10**12)),
                 {"limit": "max_rows", "maximum": str(LIMITS.max_rows), "value": str(10**12),
                  "subject": "users"}),
    beyond_limit("message-beyond-max_message_bytes", "ComputeConsumptionInline",
                 lambda: iter(_last(bytes(LIMITS.max_message_bytes + 1))), {}, "larger than max"),
    # dataset handles
    unknown_dataset("dataset-unknown", "ComputeConsumption", "0" * 32),
    unknown_dataset("dataset-10MB-id", "ComputeConsumption", HUGE_ID),
    unknown_dataset("dataset-path-traversal", "ResolveBundles", "../../../../etc/passwd"),
    unknown_dataset("dataset-empty-id", "Reconcile", ""),
    unknown_dataset("dataset-injection", "WhatIf", "'; DROP TABLE datasets; --" * 20),
]


def _assert_equal(got: Mapping[str, pa.Table], want: Mapping[str, pa.Table]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].equals(want[name]), name


def _error(exc: BaseException) -> LicenseCoreServerError:
    if isinstance(exc, LicenseCoreServerError):
        return exc
    if isinstance(exc, grpc.RpcError):
        return error_from_rpc(exc)
    raise AssertionError(f"expected a gRPC error, got {exc!r}") from exc


def _details(error: LicenseCoreServerError, kind: type) -> list:
    return [d for d in error.details if isinstance(d, kind)]


@pytest.fixture(scope="module")
def server_address(tmp_path_factory):
    # With a data directory, so hostile handles (a path, an empty id) meet the disk store too.
    server, port = create_server("127.0.0.1:0", limits=LIMITS,
                                 data_dir=tmp_path_factory.mktemp("datasets"))
    yield f"127.0.0.1:{port}"
    server.stop(None)


@pytest.fixture(scope="module")
def client(server_address):
    with LicenseCoreClient(server_address) as c:
        yield c


@pytest.fixture(scope="module")
def stub(server_address):
    with grpc.insecure_channel(server_address) as channel:
        yield pb_grpc.LicenseCoreStub(channel)


def test_the_corpus_is_large_and_names_are_unique():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_exact_status_and_details(case: Case, client, stub):
    if case.code is None:
        _assert_equal(case.send(client, stub), case.want())
        return
    with pytest.raises((grpc.RpcError, LicenseCoreServerError)) as caught:
        case.send(client, stub)
    error = _error(caught.value)
    assert error.code is case.code, error.message
    infos = _details(error, error_details_pb2.ErrorInfo)
    if case.reason:
        assert len(infos) == 1, error.details
        assert (infos[0].domain, infos[0].reason) == ("licensecore", case.reason)
        assert dict(infos[0].metadata) == case.metadata
    else:
        assert infos == []
    if case.violation is not None:
        violations = [v.field for d in _details(error, error_details_pb2.BadRequest)
                      for v in d.field_violations]
        assert violations == [case.violation]
    assert case.phrase in error.message
    if case.in_process is not None:
        with pytest.raises(InputError) as in_process:
            case.in_process()
        assert error.message == str(in_process.value)


def test_server_is_healthy_and_exact_after_the_corpus(client):
    assert client.health() == "SERVING"
    assert client.health("licensecore.v1.LicenseCore") == "SERVING"
    tables = build(directory_base())
    for got, want in [
        (client.compute_consumption(client.upload(tables)), compute_consumption(tables)),
        (client.reconcile(tables, **AS_OF), reconcile(tables, **AS_OF)),
        (client.resolve_bundles(build(bundle_base())), resolve_bundles(build(bundle_base()))),
    ]:
        _assert_equal(got, want)
    scenario = Scenario("more", pa.table({"tenant_id": [T], "license_id": ["L1"], "entitlements": [1]}))
    consumption_tables = build(base())
    _assert_equal(client.what_if(consumption_tables, [scenario]), what_if(consumption_tables, [scenario]))
