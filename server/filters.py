"""Collection filters (SPEC 3.4): a small safe language over ``people`` columns.

``compile_filter`` parses a filter and type-checks it against the column types of ``people``;
``evaluate`` turns it into a boolean mask with whole-column pyarrow.compute kernels. User text is
only ever tokenised, never executed. Logic is two-valued: a comparison (or ``in``) involving a null
is false, and ``not`` of it is true; ``is null`` / ``is not null`` test nulls.

Decisions where SPEC is silent:

- Numbers are ``-?[0-9]+(\\.[0-9]+)?`` (no exponent, no leading or trailing dot; leading zeros are
  allowed). They are compared exactly with integer columns (``age < 2.5`` is ``age <= 2``; a
  literal outside the column's range compares as the mathematical value would) and rounded to the
  nearest float64 for floating columns. NaN is an ordinary non-null value (every comparison false).
- Strings compare in UTF-8 byte (code point) order, whatever the Arrow flavour (dictionary
  columns are decoded first). ``true``/``false`` only on bool columns, which allow ``==``, ``!=``
  and ``in``.
- Columns of other types can only be tested with ``is [not] null``.
- At most ``MAX_LENGTH`` characters and ``MAX_DEPTH`` nested ``(`` / ``not`` levels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .tables import is_string_like, value_type

MAX_LENGTH = 10_000
MAX_DEPTH = 64
KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "true", "false"})

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<name>[^\W\d]\w*)  # any word; names must then be ASCII
    | (?P<number>-?[0-9][A-Za-z0-9_.]*)
    | (?P<string>'(?:[^']|'')*+')  # possessive: no backtracking over ''
    | (?P<op>==|!=|<=|>=|<|>)
    | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_BAD_NAME_CHAR = re.compile(r"[^A-Za-z0-9_]")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_COMPARE = {"==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal,
            ">": pc.greater, ">=": pc.greater_equal}
_LITERAL = {"string": "a string literal for column {!r}", "int": "a number for column {!r}",
            "float": "a number for column {!r}", "bool": "true or false for column {!r}"}


class FilterError(ValueError):
    """A filter that does not compile: ``position`` is the 0-based offset of the problem in the
    text, ``expected`` a short description of what would have been valid there."""

    def __init__(self, message: str, position: int, expected: str) -> None:
        super().__init__(f"at position {position}: {message}")
        self.message = message
        self.position = position
        self.expected = expected


@dataclass(frozen=True)
class _Compare:
    column: str
    op: str
    value: object  # str, bool, int (integer columns) or float (floating columns)


@dataclass(frozen=True)
class _IsIn:
    column: str
    values: tuple


@dataclass(frozen=True)
class _IsNull:
    column: str
    negated: bool


@dataclass(frozen=True)
class _Not:
    child: _Node


@dataclass(frozen=True)
class _And:
    children: tuple[_Node, ...]


@dataclass(frozen=True)
class _Or:
    children: tuple[_Node, ...]  # empty: false


_Node = Union[_Compare, _IsIn, _IsNull, _Not, _And, _Or]
_FALSE = _Or(())


@dataclass(frozen=True)
class Filter:
    """A compiled filter; ``columns`` maps every column it reads to its kind
    (``string``, ``bool``, ``int``, ``float`` or ``other``)."""

    text: str
    root: _Node
    columns: Mapping[str, str]


@dataclass(frozen=True)
class _Token:
    kind: str  # name, keyword, number, string, op, punct, end
    text: str
    pos: int


def _kind(t: pa.DataType) -> str:
    """The filter kind of an Arrow type: string, bool, int, float or other."""
    v = value_type(t)
    if is_string_like(t):
        return "string"
    kinds = {"bool": pa.types.is_boolean(v), "int": pa.types.is_integer(v),
             "float": pa.types.is_floating(v)}
    return next((k for k, hit in kinds.items() if hit), "other")


def _show(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


class _Parser:
    """Recursive descent over a lazily scanned token stream, so errors come in text order."""

    def __init__(self, text: str, columns: Mapping[str, pa.DataType]) -> None:
        self.text = text
        self.columns = columns
        self.used: dict[str, str] = {}
        self.scan = 0
        self.tok = self._lex()

    def _lex(self) -> _Token:
        m = _TOKEN.match(self.text, self.scan)
        if m is not None and m.lastgroup == "space":
            self.scan = m.end()
            m = _TOKEN.match(self.text, self.scan)
        pos = self.scan
        if pos == len(self.text):
            return _Token("end", "", pos)
        if m is None:
            ch = self.text[pos]
            if ch == "'":
                raise FilterError("unterminated string", pos, "a closing quote")
            if ch == "=":
                raise FilterError("unexpected character '='; compare with '=='", pos, "'=='")
            raise FilterError(f"unexpected character {ch!r}", pos, "a valid token")
        bad = _BAD_NAME_CHAR.search(m.group()) if m.lastgroup == "name" else None
        if bad is not None:
            raise FilterError(f"unexpected character {bad.group()!r} in a name", pos + bad.start(),
                              "a column name of ASCII letters, digits and '_'")
        self.scan = m.end()
        kind = "keyword" if m.lastgroup == "name" and m.group() in KEYWORDS else m.lastgroup
        return _Token(kind, m.group(), pos)

    def _advance(self) -> _Token:
        tok, self.tok = self.tok, self._lex()
        return tok

    def _fail(self, expected: str) -> FilterError:
        tok = self.tok
        found = "end of filter" if tok.kind == "end" else _show(tok.text)
        hint = " (keywords are lowercase)" if tok.text.lower() in KEYWORDS - {tok.text} else ""
        return FilterError(f"expected {expected}, found {found}{hint}", tok.pos, expected)

    def _accept(self, kind: str, text: str) -> bool:
        if self.tok.kind == kind and self.tok.text == text:
            self._advance()
            return True
        return False

    def parse(self) -> _Node:
        node = self._expr(0)
        if self.tok.kind != "end":
            raise self._fail("'and', 'or' or the end of the filter")
        return node

    def _expr(self, depth: int) -> _Node:
        nodes = [self._term(depth)]
        while self._accept("keyword", "or"):
            nodes.append(self._term(depth))
        return nodes[0] if len(nodes) == 1 else _Or(tuple(nodes))

    def _term(self, depth: int) -> _Node:
        nodes = [self._factor(depth)]
        while self._accept("keyword", "and"):
            nodes.append(self._factor(depth))
        return nodes[0] if len(nodes) == 1 else _And(tuple(nodes))

    def _factor(self, depth: int) -> _Node:
        tok = self.tok
        if (tok.kind, tok.text) not in (("keyword", "not"), ("punct", "(")):
            return self._predicate()
        if depth >= MAX_DEPTH:
            raise FilterError(f"nesting deeper than {MAX_DEPTH} levels", tok.pos,
                              "a less deeply nested expression")
        self._advance()
        if tok.text == "not":
            return _Not(self._factor(depth + 1))
        node = self._expr(depth + 1)
        if not self._accept("punct", ")"):
            raise self._fail("')'")
        return node

    def _predicate(self) -> _Node:
        tok = self.tok
        if tok.kind != "name":
            raise self._fail("a column name")
        if tok.text not in self.columns:
            names = sorted(self.columns)
            known = "people has: " + (", ".join(names[:10]) or "no columns")
            known += f", ... ({len(names) - 10} more)" if len(names) > 10 else ""
            if tok.text.lower() in KEYWORDS:
                known = "keywords are lowercase"
            raise FilterError(f"unknown column {_show(tok.text)} ({known})", tok.pos,
                              "a column of people")
        name, t = tok.text, self.columns[tok.text]
        kind = self.used[name] = _kind(t)
        self._advance()
        if self._accept("keyword", "is"):
            negated = self._accept("keyword", "not")
            if not self._accept("keyword", "null"):
                raise self._fail("'null'" if negated else "'null' or 'not null'")
            return _IsNull(name, negated)
        op = self.tok
        if op.kind != "op" and (op.kind, op.text) != ("keyword", "in"):
            raise self._fail("a comparison operator, 'in' or 'is'")
        if kind == "other":
            raise FilterError(f"column {name!r} has type {t}, which filters can only test with "
                              "'is null'", op.pos, "'is'")
        if kind == "bool" and op.text not in ("==", "!=", "in"):
            raise FilterError(f"operator {op.text!r} is not allowed on bool column {name!r}",
                              op.pos, "'==', '!=' or 'in'")
        self._advance()
        if op.kind == "op":
            return _typed_compare(name, kind, t, op.text, self._literal(name, kind))
        if not self._accept("punct", "("):
            raise self._fail("'('")
        values = [self._literal(name, kind)]
        while self._accept("punct", ","):
            values.append(self._literal(name, kind))
        if not self._accept("punct", ")"):
            raise self._fail("',' or ')'")
        return _typed_in(name, kind, t, values)

    def _literal(self, name: str, kind: str) -> object:
        tok = self.tok
        if tok.kind == "number" and kind in ("int", "float"):
            if not _NUMBER.fullmatch(tok.text):
                raise FilterError(f"malformed number {_show(tok.text)}", tok.pos,
                                  "a number such as 42, -7 or 2.5")
            value: object = Decimal(tok.text)
        elif tok.kind == "string" and kind == "string":
            value = tok.text[1:-1].replace("''", "'")
        elif tok.kind == "keyword" and tok.text in ("true", "false") and kind == "bool":
            value = tok.text == "true"
        else:
            raise self._fail(_LITERAL[kind].format(name))
        self._advance()
        return value


def _typed_compare(name: str, kind: str, t: pa.DataType, op: str, value: object) -> _Node:
    """The comparison with the literal in the column's terms (exact for integer columns)."""
    if kind == "float":
        return _Compare(name, op, float(value))
    if kind != "int":
        return _Compare(name, op, value)
    info = np.iinfo(value_type(t).to_pandas_dtype())
    lo, hi, d = int(info.min), int(info.max), value
    not_null = _IsNull(name, True)
    if op in ("==", "!="):
        if lo <= d <= hi and d == math.floor(d):
            return _Compare(name, op, int(d))
        return not_null if op == "!=" else _FALSE
    below = op in ("<", "<=")
    if d > hi or d < lo:
        return not_null if below == (d > hi) else _FALSE
    # Exact: x < d  <=>  x <= ceil(d) - 1, and so on; the bound may leave the range by one.
    bound = {"<": math.ceil(d) - 1, "<=": math.floor(d),
             ">": math.floor(d) + 1, ">=": math.ceil(d)}[op]
    if not lo <= bound <= hi:
        return _FALSE
    return _Compare(name, "<=" if below else ">=", bound)


def _typed_in(name: str, kind: str, t: pa.DataType, values: list) -> _Node:
    """``in`` with the literals the column can hold, deduplicated (none: false)."""
    if kind == "float":
        values = [float(v) for v in values]
    elif kind == "int":
        info = np.iinfo(value_type(t).to_pandas_dtype())
        values = [int(v) for v in values if info.min <= v <= info.max and v == math.floor(v)]
    unique = tuple(dict.fromkeys(values))
    return _IsIn(name, unique) if unique else _FALSE


def compile_filter(text: str, columns: Mapping[str, pa.DataType]) -> Filter:
    """Parse ``text`` and type-check it against ``columns`` (people's column name -> Arrow type)."""
    if len(text) > MAX_LENGTH:
        raise FilterError(f"filter longer than {MAX_LENGTH} characters", MAX_LENGTH,
                          "a shorter filter")
    if not text.strip():
        raise FilterError("empty filter", 0, "a filter expression")
    parser = _Parser(text, columns)
    root = parser.parse()
    return Filter(text, root, dict(parser.used))


def evaluate(f: Filter, people: pa.Table) -> np.ndarray:
    """Boolean mask of the rows of ``people`` that ``f`` selects, one entry per row."""
    cols: dict[str, pa.ChunkedArray] = {}
    for name, kind in f.columns.items():
        t = people.schema.field(name).type if name in people.column_names else None
        if t is None or _kind(t) != kind:
            raise ValueError(f"filter {_show(f.text)} was compiled for {kind} column {name!r}, "
                             f"but people has {t}")
        col = people.column(name)
        if pa.types.is_dictionary(t):
            col = col.cast(t.value_type)
        if pa.types.is_string_view(col.type):
            col = col.cast(pa.large_string())  # is_in has no string_view kernel
        elif kind == "float":
            col = col.cast(pa.float64())
        cols[name] = col
    return _eval(f.root, cols, people.num_rows)


def _mask(result: pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(result, False).to_numpy()


def _eval(node: _Node, cols: Mapping[str, pa.ChunkedArray], n: int) -> np.ndarray:
    match node:
        case _Compare(column, op, value):
            col = cols[column]
            return _mask(_COMPARE[op](col, pa.scalar(value, type=col.type)))
        case _IsIn(column, values):
            col = cols[column]
            return _mask(pc.is_in(col, value_set=pa.array(values, type=col.type)))
        case _IsNull(column, negated):
            return _mask(pc.is_valid(cols[column]) if negated else pc.is_null(cols[column]))
        case _Not(child):
            return ~_eval(child, cols, n)
        case _And(children):
            out = np.ones(n, dtype=bool)
            for child in children:
                out &= _eval(child, cols, n)
            return out
        case _Or(children):
            out = np.zeros(n, dtype=bool)
            for child in children:
                out |= _eval(child, cols, n)
            return out
    raise TypeError(f"not a filter node: {node!r}")
