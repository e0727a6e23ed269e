"""SPEC section 4 (what-if scenarios, licenses replacement rows): each scenario equals a full
computation on the modified `licenses`; the seed thread's fix; bad scenarios; gRPC and CLI."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licensecore.bench.datagen import generate, write_dir
from licensecore.clients import InputRejected, LicenseCoreClient
from licensecore.clients.cli import main
from licensecore.server.app import create_server
from licensecore.server import consumption
from licensecore.server.consumption import compute_consumption
from licensecore.server.errors import InputError
from licensecore.server.whatif import TABLE, Scenario, load_scenarios, parse_scenarios, what_if
from strategies import consumption_inputs, describe
from test_reconciliation import _seed_thread

COLUMNS = ["scenario", "tenant_id", "license_id", "consumed", "shortfall", "shortfall_cost",
           "delta_consumed", "delta_cost"]
# The changes drawn per replacement row, each column present or not, null or a value.
CHANGES = {
    "multiple_use": (pa.int32(), st.integers(0, 3)),
    "entitlements": (pa.int64(), st.integers(0, 4)),
    "allocations_consume": (pa.bool_(), st.booleans()),
    "priority": (pa.int32(), st.integers(0, 2)),
    "unit_cost": (pa.float64(), st.integers(0, 16).map(lambda k: k / 8)),
    "true_up": (pa.bool_(), st.booleans()),
}


def _licenses_with(base: pa.Table, repl: pa.Table) -> pa.Table:
    """The base `licenses` with the replacement rows' non-null cells put in (plain Python)."""
    rows = base.to_pylist()
    key = {(r["tenant_id"], r["license_id"]): r for r in rows}
    for change in repl.to_pylist():
        row = key[(change["tenant_id"], change["license_id"])]
        for column, value in change.items():
            if value is not None:
                row[column] = value
    columns = {name: [r.get(name) for r in rows] for name in base.column_names}
    for column in repl.column_names:
        if column not in columns:
            columns[column] = [r.get(column) for r in rows]
    schema = {f.name: f.type for f in base.schema}
    for column, (typ, _) in CHANGES.items():
        schema.setdefault(column, typ)
    return pa.table({name: pa.array(values, type=schema[name] if not pa.types.is_dictionary(schema[name])
                                     else pa.string()) for name, values in columns.items()})


def _expected(tables: dict[str, pa.Table], name: str, base_summary: pa.Table) -> list[dict]:
    summary = compute_consumption(tables)["license_summary"]
    out = []
    for row, base in zip(summary.to_pylist(), base_summary.to_pylist()):
        out.append({"scenario": name, "tenant_id": row["tenant_id"], "license_id": row["license_id"],
                    "consumed": row["consumed"], "shortfall": row["shortfall"],
                    "shortfall_cost": row["shortfall_cost"],
                    "delta_consumed": row["consumed"] - base["consumed"],
                    "delta_cost": row["shortfall_cost"] - base["shortfall_cost"]})
    return out


@st.composite
def inputs_and_scenarios(draw: st.DrawFn):
    tables = draw(consumption_inputs())
    licenses = tables.get("licenses")
    keys = [] if licenses is None else list(zip(licenses["tenant_id"].to_pylist(),
                                                licenses["license_id"].to_pylist()))
    scenarios = []
    for n in range(draw(st.integers(0, 3))):
        chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=3)) if keys else []
        columns = draw(st.lists(st.sampled_from(sorted(CHANGES)), unique=True, min_size=1))
        data = {"tenant_id": pa.array([k[0] for k in chosen], pa.string()),
                "license_id": pa.array([k[1] for k in chosen], licenses["license_id"].type
                                       if licenses is not None else pa.null())}
        for column in columns:
            typ, values = CHANGES[column]
            data[column] = pa.array([draw(st.none() | values) for _ in chosen], typ)
        scenarios.append(Scenario(draw(st.sampled_from(["zeta", "A", "é", "basf"])) + str(n), pa.table(data)))
    return tables, scenarios


@pytest.mark.parametrize("blocks", [False, True], ids=["one-block", "tenant-blocks"])
@given(case=inputs_and_scenarios())
@settings(max_examples=60)
def test_each_scenario_equals_a_full_computation_with_its_licenses(blocks, case):
    """Also with the kernels forced to run per block of tenants (3 threads, no minimum size)."""
    tables, scenarios = case
    saved = consumption.PARTS, consumption.SPLIT_MIN_ROWS
    if blocks:
        consumption.PARTS, consumption.SPLIT_MIN_ROWS = 3, 0
    try:
        got = what_if(tables, scenarios)[TABLE]
    finally:
        consumption.PARTS, consumption.SPLIT_MIN_ROWS = saved
    assert got.column_names == COLUMNS
    base_summary = compute_consumption(tables)["license_summary"]
    want = {"base": _expected(tables, "base", base_summary)}
    for s in scenarios:
        modified = dict(tables)
        if s.licenses.num_rows:
            modified["licenses"] = _licenses_with(tables["licenses"], s.licenses)
        want[s.name] = _expected(modified, s.name, base_summary)
    expected = [row for name in sorted(want) for row in want[name]]
    assert got.to_pylist() == expected, describe(tables)


def test_seed_thread_scenario_brings_27_down_to_1():
    tables = _seed_thread(allocations_consume=True)
    fix = Scenario("multiple_use 0", pa.table({"tenant_id": ["t"], "license_id": ["E3"],
                                               "multiple_use": [0]}))
    rows = what_if(tables, [fix])[TABLE].to_pylist()
    assert [(r["scenario"], r["consumed"], r["delta_consumed"]) for r in rows] == [
        ("base", 27.0, 0.0), ("multiple_use 0", 1.0, -26.0)]


def test_forcing_a_license_that_had_no_consumers_at_all():
    """Base without any consumption row (integer zero totals); the scenario's override counts."""
    tables = {
        "users": pa.table({"tenant_id": ["t"], "user_id": ["u"]}),
        "licenses": pa.table({"tenant_id": ["t"], "license_id": ["L"], "metric": ["user"]}),
        "allocations": pa.table({"tenant_id": ["t"], "license_id": ["L"], "target_id": ["u"],
                                 "override": [0.125]}),
    }
    force = Scenario("force", pa.table({"tenant_id": ["t"], "license_id": ["L"],
                                        "allocations_consume": [True]}))
    rows = what_if(tables, [force])[TABLE].to_pylist()
    assert [(r["scenario"], r["consumed"]) for r in rows] == [("base", 0.0), ("force", 0.125)]


def test_priority_and_unit_cost_change_spill_over_and_cost():
    """SPEC 5.4 with L2 first: d1..d5 all go to L2; L1's cost changes without recomputation."""
    t = "t"
    tables = {
        "devices": pa.table({"tenant_id": [t] * 5, "device_id": [f"d{i}" for i in range(1, 6)]}),
        "installations": pa.table({"tenant_id": [t] * 5, "device_id": [f"d{i}" for i in range(1, 6)],
                                   "application_id": ["a"] * 5}),
        "licenses": pa.table({"tenant_id": [t, t, t], "license_id": ["L1", "L2", "X"],
                              "metric": ["device"] * 3, "entitlements": pa.array([2, 10, 0], pa.int64()),
                              "priority": pa.array([1, 2, 0], pa.int32())}),
        "license_applications": pa.table({"tenant_id": [t, t], "license_id": ["L1", "L2"],
                                          "application_id": ["a", "a"]}),
    }
    scenarios = [
        Scenario("swap", pa.table({"tenant_id": [t], "license_id": ["L2"], "priority": [0]})),
        Scenario("tight", pa.table({"tenant_id": [t, t], "license_id": ["L2", "L1"],
                                    "entitlements": [1, None], "unit_cost": [None, 4.0]})),
    ]
    got = {(r["scenario"], r["license_id"]): (r["consumed"], r["shortfall_cost"])
           for r in what_if(tables, scenarios)[TABLE].to_pylist()}
    assert got[("base", "L1")] == (2.0, 0.0) and got[("base", "L2")] == (3.0, 0.0)
    assert got[("swap", "L1")] == (0.0, 0.0) and got[("swap", "L2")] == (5.0, 0.0)
    # L2 full after d3: d4, d5 spill back to L1 (no true_up), 4 on L1 with 2 entitlements.
    assert got[("tight", "L1")] == (4.0, 8.0) and got[("tight", "L2")] == (1.0, 0.0)


@pytest.mark.parametrize("scenarios, table, column, match", [
    ([Scenario("base", pa.table({"tenant_id": ["t"], "license_id": ["E3"]}))],
     "scenarios", "name", "reserved"),
    ([Scenario("a", pa.table({"tenant_id": pa.array([], pa.string()), "license_id": pa.array([], pa.string())}))] * 2,
     "scenarios", "name", "duplicate scenario name"),
    ([Scenario("a", pa.table({"tenant_id": ["t"], "license_id": ["E4"]}))],
     "scenario[a].licenses", "license_id", "no such license"),
    ([Scenario("a", pa.table({"tenant_id": ["t2"], "license_id": ["E3"]}))],
     "scenario[a].licenses", "license_id", "no such license"),
    ([Scenario("a", pa.table({"tenant_id": ["t", "t"], "license_id": ["E3", "E3"]}))],
     "scenario[a].licenses", "license_id", "duplicate"),
    ([Scenario("a", pa.table({"tenant_id": ["t"], "license_id": ["E3"], "multiple_us": [0]}))],
     "scenario[a].licenses", "multiple_us", "unknown column"),
    ([Scenario("a", pa.table({"tenant_id": ["t"], "license_id": ["E3"], "multiple_use": [-1]}))],
     "scenario[a].licenses", "multiple_use", "negative"),
    ([Scenario("a", pa.table({"tenant_id": ["t"], "license_id": ["E3"], "metric": ["seat"]}))],
     "scenario[a].licenses", "metric", "unknown value"),
    ([Scenario("a", pa.table({"tenant_id": ["t"], "license_id": ["E3"], "metric": ["device"]}))],
     "scenario[a].licenses", "metric", "metric change"),
    ([Scenario("a", pa.table({"tenant_id": ["t"], "license_id": [3]}))],
     "scenario[a].licenses", "license_id", "wrong type"),
    ([Scenario("a", pa.table({"license_id": ["E3"]}))],
     "scenario[a].licenses", "tenant_id", "missing required column"),
])
def test_bad_scenarios_are_rejected_naming_them(scenarios, table, column, match):
    with pytest.raises(InputError, match=match) as info:
        what_if(_seed_thread(True), scenarios)
    assert (info.value.table, info.value.column) == (table, column)


@pytest.mark.parametrize("data, column, row, match", [
    ({"name": "x"}, "", -1, "JSON list"),
    ([{"name": "a"}, {"name": "b", "bundles": {"bundle_id": "B"}}], "bundles", 1, "list of objects"),
    ([{"name": "a", "pools": [{"pool_id": "P", "capacity": "x"}, {"capacity": 1}]}], "pools.capacity", 0,
     "mixed"),
    ([{"licenses": []}], "name", 0, "string name"),
    ([{"name": "a", "license": []}], "license", 0, "unknown key"),
    ([{"name": "a", "licenses": [{"tenant_id": "t", "license_id": "E3", "multiple_use": "x"}, {"multiple_use": 1}]}],
     "licenses.multiple_use", 0, "mixed"),
    (["a"], "", 0, "JSON object"),
])
def test_bad_scenario_files_are_rejected(data, column, row, match, tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=match) as info:
        load_scenarios(path)
    assert (info.value.table, info.value.column, info.value.row) == ("scenarios", column, row)


def test_scenario_file_empty_lists_and_null_cells():
    scenarios = parse_scenarios([
        {"name": "fix", "licenses": [{"tenant_id": "t", "license_id": "E3", "multiple_use": 0,
                                      "unit_cost": None}], "bundles": [], "pools": []},
        {"name": "nothing"},
    ])
    rows = what_if(_seed_thread(True), scenarios)[TABLE].to_pylist()
    assert [(r["scenario"], r["consumed"]) for r in rows] == [("base", 27.0), ("fix", 1.0), ("nothing", 27.0)]


# gRPC and the command line ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def server_address():
    server, port = create_server("127.0.0.1:0")
    yield f"127.0.0.1:{port}"
    server.stop(None)


def _bench_scenarios(tables: dict[str, pa.Table]) -> list[Scenario]:
    lics = tables["licenses"]
    rng = np.random.default_rng(1)
    picks = rng.choice(lics.num_rows, size=6, replace=False)
    repl = lics.select(["tenant_id", "license_id"]).take(pa.array(picks))
    return [
        Scenario("no multiple use", repl.append_column("multiple_use", pa.array([0] * 6, pa.int32()))),
        Scenario("half", repl.append_column("entitlements", pc.cast(pc.divide(
            lics["entitlements"].take(pa.array(picks)).fill_null(8), 2), pa.int64()))),
        Scenario("empty", repl.slice(0, 0)),
    ]


def test_grpc_by_handle_and_inline_equal_in_process(server_address):
    tables = generate("S", seed=5)
    scenarios = _bench_scenarios(tables)
    outputs = what_if(tables, scenarios)
    local = outputs[TABLE]
    assert set(local["scenario"].to_pylist()) == {"base", "no multiple use", "half", "empty"}
    with LicenseCoreClient(server_address) as client:
        handle = client.upload(tables)
        assert client.what_if(handle, scenarios) == outputs
        assert client.what_if(tables, scenarios) == outputs
        assert client.what_if(handle, [])[TABLE].equals(local.filter(pc.equal(local["scenario"], "base")))
        with pytest.raises(InputRejected) as info:
            client.what_if(handle, [Scenario("base", scenarios[0].licenses)])
        assert (info.value.table, info.value.column) == ("scenarios", "name")


def test_cli_in_process_and_through_server_identical(server_address, tmp_path, capsys):
    write_dir(_seed_thread(True), tmp_path / "in")
    (tmp_path / "s.json").write_text(json.dumps([
        {"name": "fix", "licenses": [{"tenant_id": "t", "license_id": "E3", "multiple_use": 0}]}]))
    common = ["whatif", "--input", str(tmp_path / "in"), "--scenarios", str(tmp_path / "s.json")]
    assert main(common + ["--output", str(tmp_path / "local")]) == 0
    printed = capsys.readouterr().out
    assert "fix" in printed and "-26.00" in printed
    assert main(common + ["--output", str(tmp_path / "remote"), "--server", server_address]) == 0
    local = pq.read_table(tmp_path / "local" / "scenario_summary.parquet")
    remote = pq.read_table(tmp_path / "remote" / "scenario_summary.parquet")
    assert local.equals(remote) and local.num_rows == 2


def test_cli_bad_scenarios_exit_2_and_write_nothing(tmp_path, capsys):
    write_dir(_seed_thread(True), tmp_path / "in")
    (tmp_path / "s.json").write_text(json.dumps([{"name": "p", "pools": [{"tenant_id": "t", "pool_id": "P"}]}]))
    args = ["whatif", "--input", str(tmp_path / "in"), "--scenarios", str(tmp_path / "s.json"),
            "--output", str(tmp_path / "out")]
    assert main(args) == 2
    assert "scenario[p].pools.pool_id: no such pool" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
