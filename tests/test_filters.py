"""SPEC 3.4 collection filters and the "Filters" bullet of section 6.

Table-driven valid filters (selected person_ids on a small people table with nulls in every
flavour of column), table-driven invalid filters (exact error position and a message fragment),
and congruence with ``reference``, a per-row Python interpreter of the expression tree: every
single comparison on a grid of columns and literals, and Hypothesis-generated filters on random
people tables with nulls.
"""

from __future__ import annotations

import operator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from licensecore.server import filters
from licensecore.server.filters import FilterError, compile_filter, evaluate

PEOPLE = pa.table({
    "person_id": ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"],
    "dept": ["eng", "sales", None, "o'brien", "ünï", "😀", "Eng", "\uffff"],
    "site": pa.array(["berlin", "paris", None, "berlin", "münchen", "paris", None, "😀"])
    .dictionary_encode(),
    "enabled": [True, False, None, True, True, False, True, None],
    "age": pa.array([30, 45, None, 22, 60, -3, 30, 0], pa.int64()),
    "score": pa.array([1.5, None, 2.25, -0.5, 10.0, 0.0, 1.5, None], pa.float64()),
    "since": pa.array([1, None, 3, 4, 5, 6, 7, 8], pa.timestamp("s")),
})
COLUMNS = {f.name: f.type for f in PEOPLE.schema}
ALL = ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"]


def select(text: str) -> list[str]:
    mask = evaluate(compile_filter(text, COLUMNS), PEOPLE)
    assert mask.dtype == np.bool_ and mask.shape == (PEOPLE.num_rows,)
    return [p for p, hit in zip(ALL, mask) if hit]


def select_mask(text: str, people: pa.Table) -> list[bool]:
    return evaluate(compile_filter(text, {f.name: f.type for f in people.schema}), people).tolist()


VALID = [
    ("dept == 'eng'", ["p1"]),
    ("dept != 'eng'", ["p2", "p4", "p5", "p6", "p7", "p8"]),  # null dept: comparison is false
    ("not (dept == 'eng')", ["p2", "p3", "p4", "p5", "p6", "p7", "p8"]),  # ... and not of it true
    ("not dept == 'eng'", ["p2", "p3", "p4", "p5", "p6", "p7", "p8"]),
    ("dept is null", ["p3"]),
    ("dept is not null", ["p1", "p2", "p4", "p5", "p6", "p7", "p8"]),
    ("dept in ('eng', 'sales')", ["p1", "p2"]),
    ("not (dept in ('eng', 'sales'))", ["p3", "p4", "p5", "p6", "p7", "p8"]),
    ("dept == 'o''brien'", ["p4"]),
    ("dept == 'ünï'", ["p5"]),
    ("dept == ''", []),
    ("dept > 'z'", ["p5", "p6", "p8"]),  # code point order: 'ü', '😀', U+FFFF above 'z'
    ("dept > '\uffff'", ["p6"]),  # U+1F600 > U+FFFF in UTF-8 bytes (not in UTF-16 units)
    ("dept < 'a'", ["p7"]),  # 'E' < 'a'
    ("site == 'berlin'", ["p1", "p4"]),  # dictionary<string>
    ("site > 'o'", ["p2", "p6", "p8"]),
    ("site in ('paris', 'münchen')", ["p2", "p5", "p6"]),
    ("not site == 'paris'", ["p1", "p3", "p4", "p5", "p7", "p8"]),
    ("enabled == true", ["p1", "p4", "p5", "p7"]),
    ("enabled != true", ["p2", "p6"]),
    ("not enabled == true", ["p2", "p3", "p6", "p8"]),
    ("enabled in (false)", ["p2", "p6"]),
    ("enabled is null", ["p3", "p8"]),
    ("age >= 30", ["p1", "p2", "p5", "p7"]),
    ("age < 0", ["p6"]),
    ("age == -3", ["p6"]),
    ("age == 30.0", ["p1", "p7"]),
    ("age < 22.5", ["p4", "p6", "p8"]),
    ("age > 22.5", ["p1", "p2", "p5", "p7"]),
    ("age != 30.5", ["p1", "p2", "p4", "p5", "p6", "p7", "p8"]),
    ("age == 30.5", []),
    ("age > 99999999999999999999", []),
    ("age < 99999999999999999999", ["p1", "p2", "p4", "p5", "p6", "p7", "p8"]),
    ("age >= -99999999999999999999", ["p1", "p2", "p4", "p5", "p6", "p7", "p8"]),
    ("age in (30, 0, 1.5, 99999999999999999999)", ["p1", "p7", "p8"]),
    ("age in (1.5)", []),
    ("score > 1.5", ["p3", "p5"]),
    ("score <= 0", ["p4", "p6"]),
    ("score == -0.5", ["p4"]),
    ("score in (1.5, 10)", ["p1", "p5", "p7"]),
    ("score is null", ["p2", "p8"]),
    ("since is not null", ["p1", "p3", "p4", "p5", "p6", "p7", "p8"]),
    ("dept == 'eng' or dept == 'sales' and age > 100", ["p1"]),  # and binds tighter than or
    ("(dept == 'eng' or dept == 'sales') and age > 40", ["p2"]),
    ("not dept == 'eng' and age == 30", ["p7"]),  # not binds tighter than and
    ("not (dept == 'eng' and age == 30)", ["p2", "p3", "p4", "p5", "p6", "p7", "p8"]),
    ("dept is null or not enabled == true and score > 0", ["p3"]),
    ("  dept=='eng'\n", ["p1"]),
    ("((((dept == 'eng'))))", ["p1"]),
    ("not not dept == 'eng'", ["p1"]),
    ("age>=30 and(score>1 or score<1)", ["p1", "p5", "p7"]),
    ("(" * 64 + "dept == 'eng'" + ")" * 64, ["p1"]),  # exactly the maximum depth
    ("not " * 64 + "dept == 'eng'", ["p1"]),
    (" or ".join(["dept == 'eng'"] * 500), ["p1"]),  # long flat chains are not nesting
]


@pytest.mark.parametrize("text,expected", VALID, ids=[t[:40] for t, _ in VALID])
def test_valid_filter_selects(text: str, expected: list[str]) -> None:
    assert select(text) == expected


INVALID = [
    ("colour == 'red'", 0, "unknown column 'colour'"),
    ("dept == 'abc", 8, "unterminated string"),
    ("dept == 'a''", 8, "unterminated string"),
    ("__import__('os')", 0, "unknown column '__import__'"),
    ("__import__('os').system('rm -rf /')", 0, "unknown column '__import__'"),
    ("dept == 'a'; import os", 11, "unexpected character ';'"),
    ("eval('1')", 0, "unknown column 'eval'"),
    ("dept = 'a'", 5, "compare with '=='"),
    ("dept == ", 8, "expected a string literal for column 'dept', found end of filter"),
    ("== 'a'", 0, "expected a column name"),
    ("dept in ()", 9, "expected a string literal for column 'dept', found ')'"),
    ("dept in ('a',)", 13, "expected a string literal"),
    ("dept in 'a'", 8, "expected '('"),
    ("dept in ('a' 'b')", 13, "expected ',' or ')'"),
    ("(dept == 'a'", 12, "expected ')', found end of filter"),
    ("dept == 'a')", 11, "found ')'"),
    ("dept == 'a' AND age > 1", 12, "keywords are lowercase"),
    ("NOT dept == 'a'", 0, "keywords are lowercase"),
    ("dept is NULL", 8, "keywords are lowercase"),
    ("dept == TRUE", 8, "keywords are lowercase"),
    ("dept == 1", 8, "expected a string literal for column 'dept'"),
    ("site == 1", 8, "expected a string literal for column 'site'"),
    ("age == 'x'", 7, "expected a number for column 'age'"),
    ("score == true", 9, "expected a number for column 'score'"),
    ("enabled == 1", 11, "expected true or false for column 'enabled'"),
    ("enabled == 'true'", 11, "expected true or false"),
    ("enabled < true", 8, "operator '<' is not allowed on bool column 'enabled'"),
    ("since == 1", 6, "can only test with 'is null'"),
    ("", 0, "empty filter"),
    ("  \t\n ", 0, "empty filter"),
    ("1dept == 'a'", 0, "expected a column name, found '1dept'"),
    ("dept == 'a\\'b'", 12, "expected 'and', 'or' or the end of the filter, found 'b'"),
    ('dept == "a"', 8, "unexpected character '\"'"),
    ("dept is 'x'", 8, "expected 'null' or 'not null'"),
    ("dept is not", 11, "expected 'null', found end of filter"),
    ("dept is null null", 13, "expected 'and', 'or'"),
    ("dept", 4, "expected a comparison operator, 'in' or 'is'"),
    ("dept 'a'", 5, "expected a comparison operator"),
    ("and == 'a'", 0, "expected a column name, found 'and'"),
    ("true", 0, "expected a column name, found 'true'"),
    ("dept == 'a' or", 14, "expected a column name, found end of filter"),
    ("dept == 'a' and and", 16, "expected a column name, found 'and'"),
    ("not", 3, "expected a column name"),
    ("()", 1, "expected a column name, found ')'"),
    ("dept !== 'a'", 7, "unexpected character '='"),
    ("dept ==> 'a'", 7, "found '>'"),
    ("dépt == 'a'", 1, "unexpected character 'é' in a name"),
    ("dept == 'a' or ünï == 'b'", 15, "unexpected character 'ü' in a name"),
    ("dept == 'a' or ñ", 15, "unexpected character 'ñ' in a name"),
    ("age == 1.2.3", 7, "malformed number '1.2.3'"),
    ("age == 1e5", 7, "malformed number"),
    ("age == 1.", 7, "malformed number"),
    ("age == .5", 7, "unexpected character '.'"),
    ("age > - 1", 6, "unexpected character '-'"),
    ("age == 1and dept == 'a'", 7, "malformed number '1and'"),
    ("dept == 'a' or dept == 'b' $", 27, "unexpected character '$'"),
    ("(" * 65 + "dept == 'a'" + ")" * 65, 64, "nesting deeper than 64 levels"),
    ("not " * 65 + "dept == 'a'", 256, "nesting deeper than 64 levels"),
    ("not (" * 40 + "dept == 'a'" + ")" * 40, 160, "nesting deeper than 64 levels"),
    ("(" * 10_000, 64, "nesting deeper than 64 levels"),
    ("dept == 'a' or " * 700 + "dept == 'b'", 10_000, "longer than 10000 characters"),
    ("not " * 10_000 + "dept == 'a'", 10_000, "longer than 10000 characters"),
]


@pytest.mark.parametrize("text,position,fragment", INVALID, ids=[t[:40] for t, _, _ in INVALID])
def test_invalid_filter_is_rejected_at_position(text: str, position: int, fragment: str) -> None:
    with pytest.raises(FilterError) as info:
        compile_filter(text, COLUMNS)
    err = info.value
    assert err.position == position, str(err)
    assert fragment in str(err)
    assert str(err) == f"at position {position}: {err.message}"
    assert err.expected and len(str(err)) < 300
    assert isinstance(err, ValueError)


def test_deep_not_chain_beyond_length_limit_is_a_filter_error(monkeypatch) -> None:
    monkeypatch.setattr(filters, "MAX_LENGTH", 1_000_000)
    with pytest.raises(FilterError, match="nesting deeper") as info:
        compile_filter("not " * 10_000 + "dept == 'a'", COLUMNS)
    assert info.value.position == 4 * 64
    with pytest.raises(FilterError, match="nesting deeper"):
        compile_filter("(" * 10_000 + "dept == 'a'" + ")" * 10_000, COLUMNS)


def test_unknown_column_message_lists_only_a_few_columns() -> None:
    wide = {f"attr_{i:03d}": pa.string() for i in range(500)}
    with pytest.raises(FilterError, match=r"unknown column 'x' \(people has: attr_000, ") as info:
        compile_filter("x == 'a'", wide)
    assert "(490 more)" in str(info.value) and len(str(info.value)) < 250
    with pytest.raises(FilterError, match="unknown column 'yyyyyyyy"):
        compile_filter("y" * 5_000 + " == 'a'", wide)


def test_every_string_flavour_and_chunking_gives_the_same_mask() -> None:
    values = ["b", None, "a", "😀", "\uffff", "b"]
    want = [False, False, False, True, True, False]
    flavours = [pa.array(values, t) for t in (pa.string(), pa.large_string(), pa.string_view())]
    flavours.append(pa.array(values, pa.large_string()).dictionary_encode())
    for arr in flavours:
        t = pa.table({"x": arr})
        chunked = pa.concat_tables([t.slice(0, 2), t.slice(2, 0), t.slice(2)])
        for table in (t, chunked):
            f = compile_filter("x > 'b' and x in ('😀', '\uffff', 'z')", {"x": arr.type})
            assert evaluate(f, table).tolist() == want, arr.type


@pytest.mark.parametrize("text,want", [
    ("x < 300", [True, True, True, False]),  # beyond int8: every non-null value
    ("x > 300", [False, False, False, False]),
    ("x >= -128", [True, True, True, False]),
    ("x > 127", [False, False, False, False]),
    ("x < -127.5", [True, False, False, False]),
    ("x in (-128, 128, 127.0)", [True, False, True, False]),
])
def test_small_integer_columns_compare_exactly(text: str, want: list[bool]) -> None:
    table = pa.table({"x": pa.array([-128, 0, 127, None], pa.int8())})
    assert evaluate(compile_filter(text, {"x": pa.int8()}), table).tolist() == want


def test_uint64_and_float32_columns() -> None:
    table = pa.table({"u": pa.array([2**64 - 1, 0], pa.uint64()),
                      "f": pa.array([0.5, -1.25], pa.float32())})
    assert select_mask("u == 18446744073709551615", table) == [True, False]
    assert select_mask("u > -1 and f < 0", table) == [False, True]
    assert select_mask("u < 18446744073709551616 and f in (0.5, 7)", table) == [True, False]


def test_empty_people_gives_empty_mask() -> None:
    empty = PEOPLE.slice(0, 0)
    assert evaluate(compile_filter("dept == 'eng' or age > 1", COLUMNS), empty).shape == (0,)


def test_filter_compiled_for_other_column_types_is_refused() -> None:
    f = compile_filter("age > 1", COLUMNS)
    with pytest.raises(ValueError, match="compiled for int column 'age'"):
        evaluate(f, pa.table({"age": ["1"]}))
    with pytest.raises(ValueError, match="people has None"):
        evaluate(f, pa.table({"x": [1]}))


def test_filter_records_the_columns_it_reads() -> None:
    f = compile_filter("dept == 'a' or (age > 1 and site is null)", COLUMNS)
    assert dict(f.columns) == {"dept": "string", "age": "int", "site": "string"}


# --- Hypothesis: evaluator vs a per-row reference interpreter -------------------------------

STRINGS = ["", "a", "b", "ab", "B", "o'k", "é", "ｚ", "😀", "\uffff"]
INT_LITERALS = [127, 128, -128, -129, 10**20, -(10**20)]
KINDS = {"dept": "string", "site": "string", "enabled": "bool", "age": "int", "score": "float"}
OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
       ">": operator.gt, ">=": operator.ge}

numbers = st.one_of(  # small values collide with the column values; the rest probe the edges
    st.integers(-3, 3).map(Fraction),
    st.integers(-24, 24).map(lambda k: Fraction(k, 8)),
    st.sampled_from(INT_LITERALS).map(Fraction),
)


def literals(column: str) -> st.SearchStrategy[Any]:
    kind = KINDS[column]
    if kind == "string":
        return st.sampled_from(STRINGS)
    return st.booleans() if kind == "bool" else numbers


def comparison(column: str) -> st.SearchStrategy[tuple]:
    ops = ["==", "!="] if KINDS[column] == "bool" else list(OPS)
    return st.tuples(st.just("cmp"), st.just(column), st.sampled_from(ops), literals(column))


def membership(column: str) -> st.SearchStrategy[tuple]:
    return st.tuples(st.just("in"), st.just(column), st.lists(literals(column), min_size=1,
                                                               max_size=4))


columns = st.sampled_from(list(KINDS))
leaves = st.one_of(
    columns.flatmap(comparison),
    columns.flatmap(membership),
    st.tuples(st.just("isnull"), columns, st.booleans()),
)
trees = st.recursive(leaves, lambda sub: st.one_of(
    sub.map(lambda c: ("not", c)),
    sub.map(lambda c: ("paren", c)),
    st.lists(sub, min_size=2, max_size=3).map(lambda cs: ("and", cs)),
    st.lists(sub, min_size=2, max_size=3).map(lambda cs: ("or", cs)),
), max_leaves=8)


def render_literal(v: Any) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, bool):
        return "true" if v else "false"
    if v.denominator == 1:
        return str(v.numerator)
    return str(Decimal(v.numerator) / Decimal(v.denominator))


def render(node: tuple, context: int = 0) -> str:
    """Filter text with the fewest parentheses the precedence needs (or 1 < and 2 < not 3)."""
    kind = node[0]
    if kind == "cmp":
        return f"{node[1]} {node[2]} {render_literal(node[3])}"
    if kind == "in":
        return f"{node[1]} in ({', '.join(render_literal(v) for v in node[2])})"
    if kind == "isnull":
        return f"{node[1]} is {'not ' if node[2] else ''}null"
    if kind == "not":
        return "not " + render(node[1], 3)
    if kind == "paren":
        return "(" + render(node[1]) + ")"
    level = 1 if kind == "or" else 2
    text = f" {kind} ".join(render(c, level) for c in node[1])
    return f"({text})" if context > level else text


def reference(node: tuple, row: dict[str, Any]) -> bool:
    """SPEC 3.4 per row: a comparison with a null is false; not of it is true."""
    kind = node[0]
    if kind == "cmp":
        x = row[node[1]]
        return x is not None and OPS[node[2]](x, node[3])
    if kind == "in":
        x = row[node[1]]
        return x is not None and any(x == v for v in node[2])
    if kind == "isnull":
        return (row[node[1]] is None) != node[2]
    if kind == "not":
        return not reference(node[1], row)
    if kind == "paren":
        return reference(node[1], row)
    results = [reference(c, row) for c in node[1]]
    return all(results) if kind == "and" else any(results)


@st.composite
def people_tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 16))

    def column(values: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(values | st.none(), min_size=n, max_size=n))

    int_type = draw(st.sampled_from([pa.int64(), pa.int8()]))
    string_type = draw(st.sampled_from([pa.string(), pa.large_string(), pa.string_view()]))
    table = pa.table({
        "dept": pa.array(column(st.sampled_from(STRINGS)), string_type),
        "site": pa.array(column(st.sampled_from(STRINGS)), pa.string()).dictionary_encode(),
        "enabled": pa.array(column(st.booleans()), pa.bool_()),
        "age": pa.array(column(st.integers(-3, 3) | st.sampled_from([-128, 127])), int_type),
        "score": pa.array(column(st.integers(-16, 16).map(lambda k: k / 8)), pa.float64()),
    })
    cut = draw(st.integers(0, n))
    return pa.concat_tables([table.slice(0, cut), table.slice(cut)])


GRID_PEOPLE = pa.table({
    "dept": pa.array(STRINGS + [None], pa.string()),
    "site": pa.array(list(reversed(STRINGS)) + [None], pa.large_string()).dictionary_encode(),
    "enabled": pa.array([True, False, None] * 3 + [True, None], pa.bool_()),
    "age": pa.array([-128, -3, -2, -1, 0, 1, 2, 3, 127, None, 0], pa.int8()),
    "score": pa.array([-2.5, -1, -0.125, 0, 0.125, 1, 2.5, 3, None, 1, 0.5], pa.float64()),
})
GRID_LITERALS = {
    "string": STRINGS + ["zz", "a'", "\U0010ffff"],
    "bool": [True, False],
    "number": [Fraction(k, 8) for k in range(-28, 29, 3)] + [Fraction(v) for v in range(-4, 5)]
    + [Fraction(v) for v in INT_LITERALS],
}


def test_every_leaf_matches_reference_on_a_grid() -> None:
    columns = {f.name: f.type for f in GRID_PEOPLE.schema}
    rows = GRID_PEOPLE.to_pylist()
    for column, kind in KINDS.items():
        values = GRID_LITERALS["number" if kind in ("int", "float") else kind]
        ops = ["==", "!="] if kind == "bool" else list(OPS)
        leaves = [("cmp", column, op, v) for op in ops for v in values]
        leaves += [("in", column, values[i:i + 3]) for i in range(len(values))]
        for leaf in leaves + [("not", leaf) for leaf in leaves]:
            text = render(leaf)
            got = evaluate(compile_filter(text, columns), GRID_PEOPLE)
            assert got.tolist() == [reference(leaf, row) for row in rows], text


@given(people=people_tables(), forest=st.lists(trees, min_size=1, max_size=12))
def test_evaluate_matches_per_row_reference(people: pa.Table, forest: list[tuple]) -> None:
    columns = {f.name: f.type for f in people.schema}
    rows = people.to_pylist()
    for tree in forest:
        text = render(tree)
        got = evaluate(compile_filter(text, columns), people)
        assert got.tolist() == [reference(tree, row) for row in rows], text
