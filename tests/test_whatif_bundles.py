"""SPEC section 4 for bundle resolution (what-if scenarios replacing `bundles` and `pools` rows):
each scenario equals a full ``resolve_bundles`` on the modified tables; capacity and bundle
examples; bad replacement rows; gRPC and CLI round trips."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licensecore import wire
from licensecore.bench.datagen import generate, write_dir
from licensecore.bench.datagen_bundles import generate_bundles
from licensecore.clients import InputRejected, LicenseCoreClient
from licensecore.clients.cli import main
from licensecore.server.app import create_server
from licensecore.server.bundles import resolve_bundles
from licensecore.server.errors import InputError
from licensecore.server.whatif import OUTPUTS, Scenario, parse_scenarios, what_if
from licensecore.v1 import licensecore_pb2 as pb
from licensecore.v1 import licensecore_pb2_grpc as pb_grpc
from strategies import describe, eighths, or_null
from strategies_bundles import INT_IDS, STR_IDS, bundle_inputs, bundle_tables_from_rows

POOL_COLUMNS = ["scenario", "tenant_id", "pool_id", "sku_id", "capacity", "bundle_capacity", "granted",
                "over_capacity", "annual_cost", "overcommitted", "delta_granted", "delta_annual_cost"]
BUNDLE_COLUMNS = ["scenario", "tenant_id", "bundle_id", "pool_id", "capacity", "granted", "over_capacity",
                  "adds", "removes", "delta_granted"]
KEYS = {"bundles": "bundle_id", "pools": "pool_id"}
# Types of replaced columns that a base table may lack (absent optional columns).
VALUE_TYPES = {"capacity": pa.int64(), "unit_price": pa.float64(), "revoke_threshold": pa.int64()}


def _rows(tables: dict[str, pa.Table], name: str) -> list[dict[str, Any]]:
    return tables[name].to_pylist() if name in tables else []


def _replaced(base: pa.Table | None, repl: pa.Table, key: str) -> pa.Table | None:
    """``base`` with the replacement rows' non-null cells put in (plain Python); dictionary id
    columns come back as strings."""
    if base is None or not repl.num_rows:
        return base
    rows = base.to_pylist()
    by_key = {(r["tenant_id"], r[key]): r for r in rows}
    for change in repl.to_pylist():
        row = by_key[(change["tenant_id"], change[key])]
        row.update({c: v for c, v in change.items() if v is not None})
    types = {f.name: f.type.value_type if pa.types.is_dictionary(f.type) else f.type for f in base.schema}
    for f in repl.schema:
        types.setdefault(f.name, VALUE_TYPES.get(f.name, f.type))
    return pa.table({c: pa.array([r.get(c) for r in rows], t) for c, t in types.items()})


def _expected(tables: dict[str, pa.Table], name: str, base: dict[str, pa.Table]) -> tuple[list, list]:
    """The scenario's rows of both tables from a full resolution of ``tables``."""
    out = resolve_bundles(tables)
    base_pools = {(r["tenant_id"], r["pool_id"]): r for r in base["pool_summary"].to_pylist()}
    base_bundles = {(r["tenant_id"], r["bundle_id"]): r for r in base["bundle_summary"].to_pylist()}
    capacity = {(r["tenant_id"], r["bundle_id"]): r.get("capacity") for r in _rows(tables, "bundles")}
    pools = []
    for r in out["pool_summary"].to_pylist():
        b = base_pools[(r["tenant_id"], r["pool_id"])]
        pools.append({"scenario": name, **{c: r[c] for c in POOL_COLUMNS[1:10]},
                      "delta_granted": r["granted"] - b["granted"],
                      "delta_annual_cost": r["annual_cost"] - b["annual_cost"]})
    bundles = []
    for r in out["bundle_summary"].to_pylist():
        key = (r["tenant_id"], r["bundle_id"])
        bundles.append({"scenario": name, "tenant_id": r["tenant_id"], "bundle_id": r["bundle_id"],
                        "pool_id": r["pool_id"], "capacity": capacity[key],
                        **{c: r[c] for c in ("granted", "over_capacity", "adds", "removes")},
                        "delta_granted": r["granted"] - base_bundles[key]["granted"]})
    return pools, bundles


def _id_type(tables: dict[str, pa.Table], table: str, column: str) -> pa.DataType:
    t = tables[table].schema.field(column).type
    return t.value_type if pa.types.is_dictionary(t) else t


@st.composite
def scenario_rows(draw: st.DrawFn, tables: dict[str, pa.Table], table: str) -> pa.Table:
    """Replacement rows for ``table`` ("bundles" or "pools"): distinct keys of the base, each
    changed column null (keep) or a value; pool_id moves within the tenant, license groups and
    SKUs may be new ones."""
    key = KEYS[table]
    base = _rows(tables, table)
    chosen = draw(st.lists(st.sampled_from(base), unique_by=lambda r: (r["tenant_id"], r[key]),
                           min_size=draw(st.sampled_from((0, 1, 1, 1))), max_size=3)) if base else []
    if not chosen:  # no rows: key columns of type null, as a scenarios file gives them
        return pa.table({"tenant_id": pa.nulls(0), key: pa.nulls(0)})
    ints = isinstance(chosen[0][key], int)
    ids = INT_IDS if ints else STR_IDS
    data: dict[str, pa.Array] = {
        "tenant_id": pa.array([r["tenant_id"] for r in chosen], pa.string()),
        key: pa.array([r[key] for r in chosen], _id_type(tables, table, key)),
    }
    if table == "bundles":
        pools_of = {}
        for p in _rows(tables, "pools"):
            pools_of.setdefault(p["tenant_id"], []).append(p["pool_id"])
        changes = {
            "pool_id": lambda r: st.sampled_from(pools_of[r["tenant_id"]]),
            "license_group_id": lambda r: st.sampled_from(ids["license_group"] + (("new",) if not ints else (77,))),
            "capacity": lambda r: st.integers(0, 3),
            "revoke_threshold": lambda r: st.integers(0, 2),
        }
        types = {"pool_id": _id_type(tables, "pools", "pool_id"),
                 "license_group_id": _id_type(tables, "bundles", "license_group_id")}
    else:
        changes = {
            "capacity": lambda r: st.integers(0, 4),
            "unit_price": lambda r: eighths(24),
            "sku_id": lambda r: st.sampled_from(ids["sku"] + (("new",) if not ints else (99,))),
        }
        types = {"sku_id": _id_type(tables, "pools", "sku_id")}
    for column in draw(st.lists(st.sampled_from(sorted(changes)), unique=True, min_size=1)):
        values = [draw(or_null(changes[column](r), 3)) for r in chosen]
        data[column] = pa.array(values, types.get(column, VALUE_TYPES.get(column)))
    return pa.table(data)


@st.composite
def inputs_and_scenarios(draw: st.DrawFn):
    tables = draw(bundle_inputs())
    scenarios = [Scenario(f"s{n}", bundles=draw(scenario_rows(tables, "bundles")),
                          pools=draw(scenario_rows(tables, "pools")))
                 for n in range(draw(st.sampled_from((1, 2, 3, 0))))]  # 0: the base alone
    return tables, scenarios


@given(inputs_and_scenarios())
@settings(max_examples=150)
def test_each_scenario_equals_a_full_resolution_with_its_bundles_and_pools(case):
    tables, scenarios = case
    got = what_if(tables, scenarios)
    assert list(got) == list(OUTPUTS)
    base = resolve_bundles(tables)
    want_pools, want_bundles = _expected(tables, "base", base)
    for s in scenarios:
        modified = dict(tables)
        for table, key in KEYS.items():
            modified[table] = _replaced(tables.get(table), getattr(s, table), key)
        pools, bundles = _expected({k: v for k, v in modified.items() if v is not None}, s.name, base)
        want_pools += pools
        want_bundles += bundles
    assert got["pool_scenario_summary"].column_names == POOL_COLUMNS
    assert got["bundle_scenario_summary"].column_names == BUNDLE_COLUMNS
    assert got["pool_scenario_summary"].to_pylist() == want_pools, describe(tables)
    assert got["bundle_scenario_summary"].to_pylist() == want_bundles, describe(tables)
    for column in ("tenant_id", "pool_id", "sku_id"):  # ids keep the input's type
        assert got["pool_scenario_summary"].schema.field(column).type == base["pool_summary"].schema.field(column).type
    assert got["scenario_summary"].num_rows == 0


# Examples: one tenant; people p1..p5 (account = person id) in group g; bundles B1 and B2 assign g.

def _tables(pool_capacity: int | None = 6) -> dict[str, pa.Table]:
    t = "t"
    people = [f"p{i}" for i in range(1, 6)]
    return bundle_tables_from_rows({
        "people": [{"tenant_id": t, "person_id": p, "account_id": p} for p in people],
        "group_members": [{"tenant_id": t, "group_id": "g", "member_type": "person", "member_id": p}
                          for p in people],
        "pools": [{"tenant_id": t, "pool_id": "P", "sku_id": "E3", "capacity": pool_capacity, "unit_price": 2.0},
                  {"tenant_id": t, "pool_id": "Q", "sku_id": "E5", "unit_price": 4.0}],
        "bundles": [{"tenant_id": t, "bundle_id": "B1", "pool_id": "P", "license_group_id": "L1"},
                    {"tenant_id": t, "bundle_id": "B2", "pool_id": "P", "license_group_id": "L2", "capacity": 3}],
        "bundle_rules": [{"tenant_id": t, "bundle_id": b, "rule": "assign", "actor_type": "group", "actor_id": "g"}
                         for b in ("B1", "B2")],
        "license_group_members": [{"tenant_id": t, "license_group_id": "L2", "account_id": "p5"}],
    })


def _by(table: pa.Table, scenario: str, key: str) -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in table.to_pylist() if r["scenario"] == scenario}


def test_raising_a_pool_capacity_grants_the_bundles_waiting_for_it():
    """Pool P (6 seats) fills with B1's 5 people, then B2's holder p5; p1 and p2 wait for the pool
    (p3, p4 are over B2's own capacity of 3)."""
    raise_p = Scenario("P to 8", pools=pa.table({"tenant_id": ["t"], "pool_id": ["P"], "capacity": [8]}))
    got = what_if(_tables(), [raise_p])
    pools, bundles = got["pool_scenario_summary"], got["bundle_scenario_summary"]
    base, scenario = _by(pools, "base", "pool_id")["P"], _by(pools, "P to 8", "pool_id")["P"]
    assert (base["granted"], base["over_capacity"], base["annual_cost"]) == (6, 4, 144.0)
    assert (scenario["capacity"], scenario["granted"], scenario["over_capacity"]) == (8, 8, 2)
    assert (scenario["delta_granted"], scenario["delta_annual_cost"]) == (2, 48.0)
    assert scenario["overcommitted"] and base["bundle_capacity"] is None  # B1 is unlimited
    b2 = _by(bundles, "P to 8", "bundle_id")["B2"]
    assert (b2["granted"], b2["adds"], b2["removes"], b2["delta_granted"]) == (3, 2, 0, 2)
    assert _by(pools, "P to 8", "pool_id")["Q"]["delta_granted"] == 0


def test_moving_a_bundle_to_another_pool_and_license_group():
    """B2 moves to the unlimited pool Q and to a license group nobody holds yet: its 3 grants come
    from Q, its old group L2 is no longer mapped (p5 stays), the new one gets 3 adds."""
    move = Scenario("B2 to Q", bundles=pa.table({"tenant_id": ["t"], "bundle_id": ["B2"], "pool_id": ["Q"],
                                                 "license_group_id": ["L9"], "capacity": [None]}))
    got = what_if(_tables(), [move])
    pools = _by(got["pool_scenario_summary"], "B2 to Q", "pool_id")
    assert (pools["P"]["granted"], pools["P"]["delta_granted"]) == (5, -1)
    assert (pools["Q"]["granted"], pools["Q"]["delta_granted"], pools["Q"]["delta_annual_cost"]) == (3, 3, 144.0)
    b2 = _by(got["bundle_scenario_summary"], "B2 to Q", "bundle_id")["B2"]
    assert (b2["pool_id"], b2["capacity"], b2["granted"], b2["adds"], b2["removes"]) == ("Q", 3, 3, 3, 0)
    base_b2 = _by(got["bundle_scenario_summary"], "base", "bundle_id")["B2"]
    assert (base_b2["granted"], base_b2["adds"], base_b2["removes"]) == (1, 0, 0)


def test_licenses_bundles_and_pools_in_one_scenario_and_a_file():
    """A scenarios file with all three parts; the license part changes scenario_summary only."""
    tables = {**_tables(), "licenses": pa.table({"tenant_id": ["t"], "license_id": ["E3"], "metric": ["user"],
                                                  "unit_cost": [1.0]})}
    scenarios = parse_scenarios([{
        "name": "all", "licenses": [{"tenant_id": "t", "license_id": "E3", "unit_cost": 2}],
        "bundles": [{"tenant_id": "t", "bundle_id": "B1", "capacity": 1}],
        "pools": [{"tenant_id": "t", "pool_id": "P", "unit_price": 3, "sku_id": "E3-new"}],
    }])
    got = what_if(tables, scenarios)
    assert got["scenario_summary"].num_rows == 2
    p = _by(got["pool_scenario_summary"], "all", "pool_id")["P"]
    assert (p["sku_id"], p["granted"], p["annual_cost"], p["bundle_capacity"]) == ("E3-new", 4, 144.0, 4)
    assert not p["overcommitted"]


@pytest.mark.parametrize("scenario, table, column, row, value, match", [
    (Scenario("x", bundles=pa.table({"tenant_id": ["t", "t"], "bundle_id": ["B1", "B7"]})),
     "scenario[x].bundles", "bundle_id", 1, "B7", "no such bundle"),
    (Scenario("x", bundles=pa.table({"tenant_id": ["u"], "bundle_id": ["B1"]})),
     "scenario[x].bundles", "bundle_id", 0, "B1", "no such bundle"),
    (Scenario("x", pools=pa.table({"tenant_id": ["t"], "pool_id": ["R"], "capacity": [1]})),
     "scenario[x].pools", "pool_id", 0, "R", "no such pool"),
    (Scenario("x", bundles=pa.table({"tenant_id": ["t"], "bundle_id": ["B1"], "pool_id": ["R"]})),
     "scenario[x].bundles", "pool_id", 0, "R", "does not resolve"),
    (Scenario("x", pools=pa.table({"tenant_id": ["t", "t"], "pool_id": ["P", "P"]})),
     "scenario[x].pools", "pool_id", 1, "P", "duplicate"),
    (Scenario("x", pools=pa.table({"tenant_id": ["t"], "pool_id": ["P"], "capacity": [-1]})),
     "scenario[x].pools", "capacity", 0, -1, "negative"),
    (Scenario("x", pools=pa.table({"tenant_id": ["t"], "pool_id": ["P"], "capacity": ["many"]})),
     "scenario[x].pools", "capacity", -1, None, "wrong type"),
    (Scenario("x", bundles=pa.table({"tenant_id": ["t"], "bundle_id": [1]})),
     "scenario[x].bundles", "bundle_id", -1, None, "wrong type"),
    (Scenario("x", bundles=pa.table({"tenant_id": ["t"], "bundle_id": [None], "capacity": [1]},
                                    schema=pa.schema([("tenant_id", pa.string()), ("bundle_id", pa.string()),
                                                      ("capacity", pa.int64())]))),
     "scenario[x].bundles", "bundle_id", 0, None, "null in a required column"),
    (Scenario("x", bundles=pa.table({"tenant_id": ["t"], "bundle_id": ["B1"], "capacty": [1]})),
     "scenario[x].bundles", "capacty", -1, None, "unknown column"),
    (Scenario("x", pools=pa.table({"pool_id": ["P"]})),
     "scenario[x].pools", "tenant_id", -1, None, "missing required column"),
])
def test_bad_bundle_and_pool_rows_are_rejected_naming_them(scenario, table, column, row, value, match):
    with pytest.raises(InputError, match=match) as info:
        what_if(_tables(), [scenario])
    assert (info.value.table, info.value.column, info.value.row, info.value.value) == (table, column, row, value)


# gRPC and the command line ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def server_address():
    server, port = create_server("127.0.0.1:0")
    yield f"127.0.0.1:{port}"
    server.stop(None)


def _both(seed: int = 3) -> dict[str, pa.Table]:
    """Consumption and bundle inputs of size S in one dataset."""
    return {**generate("S", seed=seed), **generate_bundles("S", seed=seed)}


def _keys(table: pa.Table, key: str) -> dict[str, pa.ChunkedArray]:
    return {"tenant_id": table["tenant_id"], key: table[key]}


def _capacity_scenarios(tables: dict[str, pa.Table]) -> list[Scenario]:
    pools, bundles = tables["pools"].slice(0, 3), tables["bundles"].slice(0, 2)
    return [
        Scenario("pools halved", pools=pa.table({**_keys(pools, "pool_id"),
                                                 "capacity": pa.array([10, 0, None], pa.int64())})),
        Scenario("bundles unlimited", bundles=pa.table({**_keys(bundles, "bundle_id"),
                                                        "capacity": pa.array([None, None], pa.int64())})),
        Scenario("licenses too", licenses=tables["licenses"].select(["tenant_id", "license_id"]).slice(0, 2)
                 .append_column("multiple_use", pa.array([0, 0], pa.int32())),
                 pools=pa.table({**_keys(pools.slice(0, 1), "pool_id"), "unit_price": [1.5]})),
    ]


def test_grpc_by_handle_and_inline_equal_in_process(server_address):
    tables = _both()
    scenarios = _capacity_scenarios(tables)
    local = what_if(tables, scenarios)
    assert all(local[t].num_rows for t in OUTPUTS)
    with LicenseCoreClient(server_address) as client:
        handle = client.upload(tables)
        assert client.what_if(handle, scenarios) == local
        assert client.what_if(tables, scenarios) == local
        bad = Scenario("bad", pools=pa.table({"tenant_id": ["nobody"], "pool_id": ["P"]}))
        with pytest.raises(InputRejected) as info:
            client.what_if(handle, [bad])
        assert (info.value.table, info.value.column, info.value.value) == ("scenario[bad].pools", "pool_id", "P")


def test_grpc_streams_every_table_of_a_scenario_before_the_next_scenario(server_address):
    """The raw stream: `base` first, then the scenarios in request order, each with its rows of
    the three tables (complete, in OUTPUTS order) before the next scenario starts."""
    tables = _both(seed=5)
    scenarios = _capacity_scenarios(tables)
    requests = [pb.ScenarioChunk(scenario=s.name, chunk=c) for s in scenarios
                for part in ("licenses", "bundles", "pools") for c in wire.table_chunks(part, getattr(s, part))]
    with LicenseCoreClient(server_address) as client, grpc.insecure_channel(server_address) as channel:
        handle = client.upload(tables)
        stream = pb_grpc.LicenseCoreStub(channel).WhatIf(pb.WhatIfRequest(dataset_id=handle, scenarios=requests))
        order = [(r.scenario, r.chunk.table) for r in stream if r.chunk.last]
    assert order == [(name, table) for name in ["base", *(s.name for s in scenarios)] for table in OUTPUTS]


def test_cli_writes_every_summary_in_process_and_through_server_identical(server_address, tmp_path, capsys):
    tables = generate_bundles("S", seed=4)
    write_dir(tables, tmp_path / "in")
    pool = tables["pools"].slice(0, 1).to_pylist()[0]
    (tmp_path / "s.json").write_text(json.dumps([
        {"name": "no seats", "pools": [{"tenant_id": pool["tenant_id"], "pool_id": pool["pool_id"], "capacity": 0}]}]))
    common = ["whatif", "--input", str(tmp_path / "in"), "--scenarios", str(tmp_path / "s.json")]
    assert main(common + ["--output", str(tmp_path / "local")]) == 0
    printed = capsys.readouterr().out
    assert "no seats: 1 pool(s) change" in printed and "Δ granted" in printed
    assert main(common + ["--output", str(tmp_path / "remote"), "--server", server_address]) == 0
    for table in OUTPUTS:
        local = pq.read_table(tmp_path / "local" / f"{table}.parquet")
        assert local.equals(pq.read_table(tmp_path / "remote" / f"{table}.parquet"))
    pools = pq.read_table(tmp_path / "local" / "pool_scenario_summary.parquet")
    assert pools.num_rows == 2 * tables["pools"].num_rows


def test_cli_bad_bundle_rows_exit_2_and_write_nothing(tmp_path, capsys):
    write_dir(generate_bundles("S", seed=4), tmp_path / "in")
    (tmp_path / "s.json").write_text(json.dumps([{"name": "b", "bundles": [{"tenant_id": "t", "bundle_id": "B"}]}]))
    args = ["whatif", "--input", str(tmp_path / "in"), "--scenarios", str(tmp_path / "s.json"),
            "--output", str(tmp_path / "out")]
    assert main(args) == 2
    assert "scenario[b].bundles.bundle_id: no such bundle" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
