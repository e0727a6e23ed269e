"""``licensecore graph apply`` against the local Graph emulator: batching, throttling, faults,
idempotence, the journal across a killed run, dry run, approval and permissions."""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from graph_emulator import TOKEN, GraphEmulator, graph_cli, populate

from licensecore.clients.graph.apply import RetryPolicy, apply_changes
from licensecore.clients.graph.auth import StaticTokenCredential, graph_client
from licensecore.clients.graph.errors import GraphPermissionError
from licensecore.clients.graph.journal import Journal
from licensecore.clients.graph.plan import read_plan
from licensecore.server.errors import InputError

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions")]
TENANT = "contoso"
COLUMNS = ("tenant_id", "license_group_id", "op", "account_id", "status")


@pytest.fixture
def emulator(monkeypatch):
    monkeypatch.setenv("LICENSECORE_GRAPH_TOKEN", TOKEN)
    em = GraphEmulator()
    em.start()
    yield em
    em.stop()


def _groups(em: GraphEmulator) -> list[str]:
    return sorted(g for g, group in em.groups.items() if group["assignedLicenses"])


def _write_plan(path: Path, rows: list[tuple]) -> Path:
    pq.write_table(pa.table({c: [r[i] for r in rows] for i, c in enumerate(COLUMNS)},
                            schema=pa.schema([(c, pa.string()) for c in COLUMNS])), path)
    return path


def _big_plan(em: GraphEmulator, adds_per_group: int, removes: int) -> tuple[list[tuple], dict]:
    """Removes from the first group's current members, adds to three groups; the desired state."""
    users = sorted(em.users)
    groups = _groups(em)[:3]
    for u in users[:removes + 100]:
        em.add_member(groups[0], u)
    rows = [(TENANT, groups[0], "remove", u, "ready") for u in users[:removes]]
    start = removes + 100
    for g in groups:
        rows += [(TENANT, g, "add", u, "ready") for u in users[start:start + adds_per_group]]
        start += adds_per_group
    desired = {g: set(em.members[g]) for g in em.groups}
    for _, g, op, u, _ in rows:
        (desired[g].add if op == "add" else desired[g].discard)(u)
    return rows, desired


def _apply(emulator, plan: Path, *extra) -> int:
    return graph_cli(["graph", "apply", "--plan", str(plan), "--graph-url", emulator.base_url,
                      *extra])


def test_3000_adds_and_1000_removes_through_throttling_and_faults(emulator, tmp_path):
    populate(emulator, 4300, groups=3)
    rows, desired = _big_plan(emulator, 1000, 1000)
    plan = read_plan(_write_plan(tmp_path / "plan.parquet", rows))
    g0 = _groups(emulator)[0]
    faults = [
        emulator.inject(429, where="item", count=12, every=9, retry_after=3),
        emulator.inject(503, where="item", count=6, every=13, path="/groups"),
        # applied, then answered 503: the retry meets "not a member" and counts it done
        emulator.inject(503, where="item", count=5, every=17, path=f"/groups/{g0}/members",
                        after_apply=True),
        emulator.inject(429, path="/$batch", count=1, retry_after=2),
        emulator.inject(500, path="/$batch", count=1),
    ]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def run():
        async with graph_client(StaticTokenCredential(TOKEN), emulator.base_url) as client:
            with Journal(tmp_path / "journal.sqlite", plan.plan_id) as journal:
                return await apply_changes(client, emulator.base_url, plan.select(False), journal,
                                           RetryPolicy(sleep=sleep))

    summary = asyncio.run(run())
    assert all(f.count == 0 for f in faults)
    assert {g: emulator.members[g] for g in desired} == desired
    assert sorted(emulator.applied) == sorted({(op, g, u) for _, g, op, u, _ in rows})
    assert summary.applied + summary.unchanged == len(emulator.applied) == 4000
    assert not summary.failed and 1 <= summary.unchanged <= 5  # a fault may hit one item twice
    fired = 12 + 6 + 5 + 2  # every fault fired (counts are down to 0): one resend each
    bound = math.ceil(3000 / 400) + math.ceil(1000 / 20)
    assert emulator.request_count() == emulator.request_count("/$batch") == summary.requests
    assert summary.requests <= bound + fired
    assert 3.0 in slept and 2.0 in slept  # Retry-After of items and of the whole batch


def test_killed_apply_resumes_from_the_journal_without_repeating_a_change(emulator, tmp_path,
                                                                          capsys):
    populate(emulator, 1300, groups=3)
    rows, desired = _big_plan(emulator, 300, 200)
    plan = _write_plan(tmp_path / "plan.parquet", rows)
    journal = tmp_path / "journal.sqlite"
    # 10 batches of removes, then 400 adds in the 11th: applied, but its answer never arrives
    emulator.hang_after_batches = 11
    runner = ("import sys; sys.path.insert(0, sys.argv[1]); from graph_emulator import graph_cli; "
              "sys.exit(graph_cli(sys.argv[2:]))")
    child = subprocess.Popen(
        [sys.executable, "-c", runner, str(Path(__file__).parent), "graph", "apply", "--plan",
         str(plan), "--journal", str(journal), "--graph-url", emulator.base_url],
        env={**os.environ, "LICENSECORE_GRAPH_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert emulator.hung.wait(30), "the apply never reached its 11th batch"
    finally:
        child.kill()
        child.wait(10)
        emulator.release.set()
    applied_before = len(emulator.applied)
    with sqlite3.connect(journal) as db:
        states = dict(db.execute("SELECT state, count(*) FROM changes GROUP BY state").fetchall())
    assert states == {"done": 200, "sent": 400} and applied_before == 600

    assert _apply(emulator, plan, "--journal", str(journal)) == 0
    out = capsys.readouterr().out
    assert "applied 500, already in place 400," in out and "done in an earlier run 200" in out
    assert {g: emulator.members[g] for g in desired} == desired
    assert sorted(emulator.applied) == sorted({(op, g, u) for _, g, op, u, _ in rows})
    with sqlite3.connect(journal) as db:
        done = db.execute("SELECT count(*) FROM changes WHERE state = 'done'").fetchone()[0]
    assert done == len(rows)

    before = emulator.request_count()
    assert _apply(emulator, plan, "--journal", str(journal)) == 0  # all done: nothing sent
    assert emulator.request_count() == before


def test_dry_run_prints_the_plan_and_sends_nothing(emulator, tmp_path, capsys):
    populate(emulator, 100, groups=2)
    g = _groups(emulator)[0]
    users = sorted(emulator.users)
    plan = _write_plan(tmp_path / "plan.parquet",
                       [(TENANT, g, "add", u, "ready") for u in users[:30]])
    assert _apply(emulator, plan, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would apply 30 changes in 1 $batch requests" in out and users[0] in out
    assert emulator.requests == [] and emulator.applied == []
    assert not Path(f"{plan}.journal.sqlite").exists()


def test_needs_approval_rows_are_skipped_unless_included(emulator, tmp_path, capsys):
    populate(emulator, 100, groups=2)
    g = _groups(emulator)[0]
    users = sorted(emulator.users)
    for u in users[:10]:
        emulator.add_member(g, u)
    rows = ([(TENANT, g, "remove", u, "needs_approval") for u in users[:10]]
            + [(TENANT, g, "add", u, "ready") for u in users[10:15]])
    plan = _write_plan(tmp_path / "plan.parquet", rows)
    assert _apply(emulator, plan) == 0
    assert "applied 5," in capsys.readouterr().out
    assert emulator.members[g] == set(users[:15])
    assert _apply(emulator, plan, "--include-needs-approval") == 0
    out = capsys.readouterr().out
    assert "applied 10," in out and "done in an earlier run 5" in out
    assert emulator.members[g] == set(users[10:15])


def test_a_deleted_user_fails_alone_and_the_rest_of_its_patch_is_applied(emulator, tmp_path, capsys):
    populate(emulator, 100, groups=2)
    g = _groups(emulator)[0]
    users = sorted(emulator.users)
    emulator.delete_user(users[3])
    plan = _write_plan(tmp_path / "plan.parquet",
                       [(TENANT, g, "add", u, "ready") for u in users[:20]])
    assert _apply(emulator, plan) == 1
    captured = capsys.readouterr()
    assert "applied 19," in captured.out and "failed 1;" in captured.out
    assert users[3] in captured.err and "404" in captured.err
    assert emulator.members[g] == set(users[:20]) - {users[3]}


def test_forbidden_write_names_the_graph_permission(emulator, tmp_path):
    populate(emulator, 50, groups=2)
    emulator.denied = {"GroupMember.ReadWrite.All"}
    g = _groups(emulator)[0]
    plan = _write_plan(tmp_path / "plan.parquet",
                       [(TENANT, g, "add", u, "ready") for u in sorted(emulator.users)[:5]])
    with pytest.raises(GraphPermissionError, match="GroupMember.ReadWrite.All"):
        _apply(emulator, plan)
    assert emulator.applied == []


@pytest.mark.parametrize("rows, column, problem", [
    ([(TENANT, "g", "move", "u", "ready")], "op", "unknown value"),
    ([(TENANT, "g", "add", "u", "maybe")], "status", "unknown value"),
    ([(TENANT, "g", "add", None, "ready")], "account_id", "null"),
    ([(TENANT, "g", "add", "u", "ready"), (TENANT, "g", "remove", "u", "ready")], "account_id",
     "duplicate"),
    ([(TENANT, "g", "add", "u", "ready"), ("other", "g", "add", "v", "ready")], "tenant_id",
     "one tenant"),
])
def test_a_bad_plan_is_rejected_whole_naming_column_and_row(tmp_path, rows, column, problem):
    plan = _write_plan(tmp_path / "plan.parquet", rows)
    with pytest.raises(InputError, match=problem) as caught:
        graph_cli(["graph", "apply", "--plan", str(plan), "--dry-run"])
    assert caught.value.table == "fulfillment" and caught.value.column == column


def test_a_plan_missing_a_column_or_file_is_bad_input(tmp_path):
    pq.write_table(pa.table({"tenant_id": ["t"], "op": ["add"]}), tmp_path / "plan.parquet")
    with pytest.raises(InputError, match="missing required column"):
        read_plan(tmp_path / "plan.parquet")
    with pytest.raises(InputError, match="cannot read plan"):
        read_plan(tmp_path / "absent.parquet")


def _wired() -> bool:
    from licensecore.clients import cli

    return "add_graph_commands" in vars(cli)


@pytest.mark.skipif(not _wired(), reason="graph commands not wired into licensecore.clients.cli")
def test_main_command_line_exits_2_for_a_bad_plan_and_1_for_a_refused_permission(
        emulator, tmp_path, capsys):
    from licensecore.clients.cli import main

    populate(emulator, 20, groups=2)
    g = _groups(emulator)[0]
    bad = _write_plan(tmp_path / "bad.parquet", [(TENANT, g, "move", "u", "ready")])
    assert main(["graph", "apply", "--plan", str(bad), "--graph-url", emulator.base_url]) == 2
    assert "fulfillment.op" in capsys.readouterr().err
    emulator.denied = {"GroupMember.ReadWrite.All"}
    plan = _write_plan(tmp_path / "plan.parquet",
                       [(TENANT, g, "add", u, "ready") for u in sorted(emulator.users)[:3]])
    assert main(["graph", "apply", "--plan", str(plan), "--graph-url", emulator.base_url]) == 1
    err = capsys.readouterr().err
    assert "GroupMember.ReadWrite.All" in err and "Traceback" not in err
