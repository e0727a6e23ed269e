"""Id encoding: codes sort like the ids, and key look-ups agree with a plain dict."""

import re
import uuid

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from licensecore import compact
from licensecore.server.encode import Dictionary, KeySpace

keys = st.lists(st.integers(-1, 40), max_size=30)
GUID_A, GUID_B = "0f0e0d0c-0000-4000-8000-000000000001", "ffffffff-0000-4000-8000-000000000002"


@given(keys, keys, st.sampled_from([1, 1 << 30]))
def test_key_lookup_matches_a_dict(entity_keys, queries, spread):
    """``spread`` makes the key range huge, forcing the sorted (not direct-address) path."""
    entities = np.array(entity_keys, np.int64)
    entities = np.where(entities >= 0, entities * spread, -1)
    space = KeySpace(entities, 41 * spread)
    want_codes = {k: i for i, k in enumerate(sorted({k for k in entities.tolist() if k >= 0}))}
    assert space.keys.tolist() == sorted(want_codes)
    q = np.array(queries, np.int64)
    q = np.where(q >= 0, q * spread, -1)
    assert space.lookup(q).tolist() == [want_codes.get(k, -1) for k in q.tolist()]


@given(st.lists(st.lists(st.one_of(st.none(), st.text("aZé\x00b", max_size=3)), max_size=6), min_size=1, max_size=3))
def test_dictionary_codes_follow_utf8_byte_order(columns):
    arrays = [pa.chunked_array([pa.array(c, pa.string())]) for c in columns]
    d = Dictionary(arrays)
    values = d.values.to_pylist()
    assert values == sorted({v for c in columns for v in c if v is not None}, key=lambda s: s.encode())
    for col, codes in zip(columns, d.codes):
        assert [values[c] if c >= 0 else None for c in codes.tolist()] == col


@given(st.lists(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["b", "a", "é", GUID_A, GUID_B])),
                                    st.sampled_from(["plain", "shared", "own"])), max_size=8),
                min_size=1, max_size=3))
def test_dictionary_of_dictionary_chunks_equals_the_decoded_columns(columns):
    """Chunks of dictionary type (sharing one dictionary, with one of their own, with null
    indices; in columns beside plain columns) code as the same values decoded would."""
    shared = pa.array(["é", "a", GUID_A, GUID_B, "b", "unused"])

    def chunk(values: list, how: str) -> pa.Array:
        if how == "plain":
            return pa.array(values, pa.string())
        if how == "own":
            return pa.array(values, pa.string()).dictionary_encode()
        indices = pa.array([None if v is None else shared.to_pylist().index(v) for v in values], pa.int8())
        return pa.DictionaryArray.from_arrays(indices, shared)

    def column(rows: list) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
        plain = pa.chunked_array([pa.array([v for v, _ in rows], pa.string())])
        if rows and rows[0][1] == "plain":  # a plain column, as a table not sent compact has
            return plain, plain
        parts = [rows[:2], rows[2:5], rows[5:]]
        chunks = [chunk([v for v, _ in part], part[0][1] if part else "shared") for part in parts]
        dictionary_type = pa.dictionary(pa.int32(), pa.string())
        coded = pa.chunked_array([c.cast(dictionary_type) if pa.types.is_dictionary(c.type)
                                  else c.dictionary_encode().cast(dictionary_type) for c in chunks])
        return pa.chunked_array(coded, dictionary_type), plain

    pairs = [column(rows) for rows in columns]
    got = Dictionary([dictionary for dictionary, _ in pairs])
    want = Dictionary([plain for _, plain in pairs])
    assert got.values.equals(want.values)
    assert [c.tolist() for c in got.codes] == [c.tolist() for c in want.codes]


@given(st.lists(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["b", "a", "é", GUID_A, GUID_B])),
                                    st.integers(1, 12)), max_size=10), min_size=1, max_size=3),
       st.booleans())
def test_dictionary_of_columns_in_runs_equals_row_by_row(columns, large):
    """Columns in runs (of nulls too), coded by their runs' values, code as row by row."""
    from licensecore import compact

    arrays = [pa.chunked_array([pa.array([v for v, n in runs for _ in range(n)],
                                         pa.large_string() if large else pa.string())]) for runs in columns]
    want = Dictionary(arrays)
    saved = compact.RUN_SAMPLES, compact.RUN_SAMPLE_ROWS, compact.MIN_RUN_LENGTH
    compact.RUN_SAMPLES, compact.RUN_SAMPLE_ROWS, compact.MIN_RUN_LENGTH = 2, 1, 1
    try:
        got = Dictionary(arrays)
    finally:
        compact.RUN_SAMPLES, compact.RUN_SAMPLE_ROWS, compact.MIN_RUN_LENGTH = saved
    assert got.values.equals(want.values)
    assert [c.tolist() for c in got.codes] == [c.tolist() for c in want.codes]


def _buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    _, offsets, data = array.buffers()
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    return (np.frombuffer(offsets, width)[array.offset:array.offset + len(array) + 1],
            np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8))


# Prefixes of 0, 7, 8, 9 and 16 characters make ties on the first 8 bytes (and deeper) common;
# the alphabet holds NUL and a 2-byte character, so zero padding and UTF-8 bytes are exercised.
long_ids = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(["", "P" * 7, "P" * 8, "P" * 9, "P" * 16]),
    st.text("ab\x00é", max_size=12),
)


@given(st.lists(long_ids, max_size=60), st.booleans(), st.integers(0, 3))
def test_string_sort_is_byte_order_and_stable(strings, large, skip):
    """``kernels.strings.sort_order`` equals Python's stable sort by UTF-8 bytes (duplicates keep
    their input order), for sliced and large_string arrays too."""
    from licensecore.kernels.strings import sort_order

    array = pa.array(["x"] * skip + strings, pa.large_string() if large else pa.string()).slice(skip)
    order = sort_order(*_buffers(array))
    assert order.tolist() == sorted(range(len(strings)), key=lambda i: strings[i].encode())


def _guid(n: int) -> str:
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# Small id domains so that duplicates are common; near-GUIDs (upper case, no dash, one character
# short) force the fallback to Arrow's dictionary for the whole column set.
guid_ids = st.one_of(
    st.none(),
    st.builds(_guid, st.sampled_from([0, 1, 9, 10, 15, 16, 2**64 - 1, 2**64, 2**64 + 1, 2**127, 2**128 - 1])),
)
near_guids = st.sampled_from([_guid(10).upper(), _guid(11).replace("-", "0"), _guid(12)[:-1], "u1"])


def _dictionary_with_few_guids(columns: list[pa.ChunkedArray], few: int) -> Dictionary:
    """``Dictionary(columns)`` with ``compact.FEW_GUIDS = few`` (restored after: hypothesis tests
    cannot take pytest's monkeypatch)."""
    saved, compact.FEW_GUIDS = compact.FEW_GUIDS, few
    try:
        return Dictionary(columns)
    finally:
        compact.FEW_GUIDS = saved


def _as_guid_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A string column as ``compact.GUID_TYPE`` (as a client sends it) when its values are all
    GUIDs, else as it is."""
    parsed = compact.guid_pairs(column)
    return column if parsed is None else pa.chunked_array([compact.guid_array(*parsed)])


@given(st.lists(st.lists(guid_ids, max_size=8), min_size=1, max_size=4), st.lists(near_guids, max_size=1),
       st.booleans(), st.integers(0, 2), st.lists(st.booleans(), min_size=4, max_size=4), st.sampled_from([0, 3, 64]))
def test_guid_dictionary_equals_the_plain_definition(columns, odd, large, skip, as_bytes, few):
    """The GUID fast path (and its fallback) give the sorted distinct values and the codes a plain
    Python sort gives, for several chunks, sliced arrays, nulls, large_string, and string columns
    beside columns of GUID bytes (``as_bytes``: string columns only, as normalised ones are); with
    ``few`` as ``FEW_GUIDS``, so that the one-pass and the partitioned paths both run."""
    typ = pa.large_string() if large else pa.string()
    columns = columns[:-1] + [columns[-1] + odd]
    arrays = [pa.chunked_array([pa.array([_guid(3)] * skip + c[:2], typ).slice(skip), pa.array(c[2:], typ)])
              for c in columns]
    if not large:
        arrays = [_as_guid_column(a) if to_bytes else a for a, to_bytes in zip(arrays, as_bytes)]
    d = _dictionary_with_few_guids(arrays, few)
    values = d.values.to_pylist()
    assert d.values.type == typ
    assert values == sorted({v for c in columns for v in c if v is not None}, key=lambda s: s.encode())
    for col, codes in zip(columns, d.codes):
        assert [values[c] if c >= 0 else None for c in codes.tolist()] == col


@given(st.lists(st.integers(0, 2**128 - 1), max_size=50))
def test_guid_text_is_the_uuid_text(numbers):
    """GUID bytes print back as Python's ``uuid`` prints them."""
    text = [str(uuid.UUID(int=n)) for n in numbers]
    column = _as_guid_column(pa.chunked_array([pa.array(text, pa.string())]))
    if not numbers:
        return
    array = column.chunk(0)
    assert array.to_pylist() == [uuid.UUID(int=n).bytes for n in numbers]
    assert compact.guid_text(array, pa.large_string()).to_pylist() == text


# Pools of GUIDs that span the whole 128-bit range (up to 1,024 partitions by their high bits), or
# share all but their lowest bits (one partition), or cluster in two places (uneven partitions).
guid_pools = st.one_of(
    st.lists(st.integers(0, 2**128 - 1), min_size=1, max_size=300),
    st.lists(st.integers(0, 2**12), min_size=1, max_size=300),
    st.lists(st.builds(lambda top, low: (top << 120) | low, st.sampled_from([0, 0xAB]), st.integers(0, 2**70)),
             min_size=1, max_size=300),
)


@given(guid_pools, st.data(), st.sampled_from([0, 100, 1 << 16]))
def test_guid_dictionary_of_many_rows_equals_sorted_set(pool, data, few):
    """Many rows, duplicates and nulls over several partitions and both parts (or in one pass, up
    to ``few`` distinct): the values are the sorted distinct GUIDs and each row's code points at
    its own GUID."""
    rows = data.draw(st.lists(st.one_of(st.none(), st.sampled_from(pool).map(_guid)), max_size=2000))
    d = _dictionary_with_few_guids([pa.chunked_array([pa.array(rows, pa.string())])], few)
    values = d.values.to_pylist()
    assert values == sorted({r for r in rows if r is not None})
    assert [values[c] if c >= 0 else None for c in d.codes[0].tolist()] == rows


def test_guid_kernels_parse_and_print_back():
    from licensecore.kernels import guids

    ids = [_guid(n) for n in (0, 2**64 - 1, 2**128 - 1, 0x0123456789ABCDEF_FEDCBA9876543210)]
    offsets, data = _buffers(pa.array(ids))
    hi, lo = np.empty(4, np.uint64), np.empty(4, np.uint64)
    assert guids.parse(offsets, data, np.empty(0, np.bool_), hi, lo)
    assert [(int(h) << 64) | int(w) for h, w in zip(hi, lo)] == [0, 2**64 - 1, 2**128 - 1,
                                                                 0x0123456789ABCDEF_FEDCBA9876543210]
    out = np.empty(4 * guids.GUID_LENGTH, np.uint8)
    guids.format_guids(hi, lo, out)
    assert out.tobytes().decode() == "".join(ids)
    for bad in ("0" * 36, _guid(0xABC).upper(), _guid(1)[:-1] + "g", _guid(1) + "0", _guid(1)[1:], "",
                _guid(1)[:7] + "-0" + _guid(1)[9:]):
        o, d = _buffers(pa.array([bad]))
        assert not guids.parse(o, d, np.empty(0, np.bool_), hi[:1], lo[:1])
    o, d = _buffers(pa.array([ids[3], "not a GUID", ids[1]]))
    hi, lo = np.full(3, 7, np.uint64), np.full(3, 7, np.uint64)
    assert guids.parse(o, d, np.array([True, False, True]), hi, lo)  # a null row is not parsed: 0, 0
    assert hi.tolist() == [0x0123456789ABCDEF, 0, 0] and lo.tolist() == [0xFEDCBA9876543210, 0, 2**64 - 1]
    empty = np.empty(0, np.uint64)
    assert guids.parse(np.zeros(1, np.int32), np.empty(0, np.uint8), np.empty(0, np.bool_), empty, empty)


_CANONICAL = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _rows(strings: list[bytes], width=np.int32, skip: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and data of ``strings`` laid end to end after ``skip`` junk bytes."""
    lengths = np.array([len(s) for s in strings], np.int64)
    offsets = (skip + np.concatenate([[0], np.cumsum(lengths)])).astype(width)
    return offsets, np.frombuffer(b"x" * skip + b"".join(strings), np.uint8)


def test_guid_parse_checks_every_byte_at_every_position():
    """Each byte value at each of the 36 places of a GUID: ``parse`` accepts exactly the canonical
    lowercase GUIDs (a regular expression's), with their 32 hex digits as ``hi`` and ``lo``."""
    from licensecore.kernels import guids

    base = _guid(0x0123456789ABCDEF_FEDCBA9876543210).encode()
    strings = [base[:k] + bytes([b]) + base[k + 1:] for k in range(36) for b in range(256)]
    good = [s for s in strings if _CANONICAL.fullmatch(s)]
    bad = [s for s in strings if not _CANONICAL.fullmatch(s)]
    assert len(good) == 32 * 16 + 4 and len(bad) == 36 * 256 - len(good)
    offsets, data = _rows(good, skip=1)  # rows at odd addresses: word loads need no alignment
    hi, lo = np.empty(len(good), np.uint64), np.empty(len(good), np.uint64)
    assert guids.parse(offsets, data, np.empty(0, np.bool_), hi, lo)
    digits = [s.decode().replace("-", "") for s in good]
    assert hi.tolist() == [int(d[:16], 16) for d in digits]
    assert lo.tolist() == [int(d[16:], 16) for d in digits]
    offsets, data = _rows(bad, skip=1)
    hi, lo = np.empty(1, np.uint64), np.empty(1, np.uint64)
    rejected = [not guids.parse(offsets[i:i + 2], data, np.empty(0, np.bool_), hi, lo) for i in range(len(bad))]
    assert all(rejected)


def _with_byte(n: int, k: int, byte: bytes) -> bytes:
    """GUID ``n`` with ``byte`` at place ``k``."""
    g = _guid(n).encode()
    return g[:k] + byte + g[k + 1:]


guid_bytes = st.builds(lambda n: _guid(n).encode(), st.integers(0, 2**128 - 1))
# Strings near GUIDs: a dash made a digit or an end digit a "g"; a byte changed (to a digit or a
# dash, upper case, the neighbours of the digit ranges, any byte); one character more or less; other
# lengths; dashes elsewhere. Some are canonical GUIDs still.
near_guid_bytes = st.one_of(
    st.builds(_with_byte, st.integers(0, 2**128 - 1), st.sampled_from([0, 8, 13, 18, 23, 35]),
              st.sampled_from([b"0", b"a", b"g"])),
    st.builds(_with_byte, st.integers(0, 2**128 - 1), st.integers(0, 35),
              st.one_of(st.sampled_from([b"-", b"0", b"f", b"A", b"F", b"g", b"/", b":", b"`", b"\xe9"]),
                        st.binary(min_size=1, max_size=1))),
    st.builds(lambda n, length: (_guid(n) + "0")[:length].encode(), st.integers(0, 2**128 - 1),
              st.sampled_from([35, 37])),
    st.binary(min_size=35, max_size=37),
    st.text("0123456789abcdef-", min_size=35, max_size=37).map(str.encode),
)


@given(st.lists(st.tuples(guid_bytes, st.booleans()), max_size=10), st.tuples(near_guid_bytes, st.booleans()),
       st.integers(0, 10), st.booleans(), st.sampled_from([np.int32, np.int64]), st.integers(0, 3))
def test_guid_parse_equals_the_plain_definition(rows, odd, place, nullable, width, skip):
    """GUIDs with one near-GUID among them, some rows null: ``parse`` is True exactly when every
    valid row is a canonical GUID; then valid rows hold their digits and null rows (whatever their
    bytes) hold 0, 0."""
    from licensecore.kernels import guids

    rows = rows[:place] + [odd] + rows[place:]
    strings = [s for s, _ in rows]
    valid = np.array([v for _, v in rows] if nullable else [], np.bool_)
    is_valid = valid.tolist() if nullable else [True] * len(rows)
    offsets, data = _rows(strings, width, skip)
    hi, lo = np.full(len(rows), 7, np.uint64), np.full(len(rows), 7, np.uint64)
    ok = guids.parse(offsets, data, valid, hi, lo)
    assert ok == all(_CANONICAL.fullmatch(s) is not None for s, v in zip(strings, is_valid) if v)
    if ok:
        want = [int(s.decode().replace("-", ""), 16) if v else 0 for s, v in zip(strings, is_valid)]
        assert hi.tolist() == [w >> 64 for w in want]
        assert lo.tolist() == [w & (2**64 - 1) for w in want]


@given(st.lists(st.integers(-1, 3), max_size=20))
def test_decode_in_parts_equals_one_take(codes):
    from licensecore.server import encode

    values = pa.array(["a", "b", "c", "d"])
    want = [None if c < 0 else "abcd"[c] for c in codes]
    for part_rows in (0, 1 << 20):  # in parts side by side, and in one take
        encode.DECODE_PART_ROWS, saved = part_rows, encode.DECODE_PART_ROWS
        try:
            got = encode.decode(values, np.array(codes, np.int64), pa.large_string())
        finally:
            encode.DECODE_PART_ROWS = saved
        assert got.type == pa.large_string()
        assert got.to_pylist() == want


@given(st.lists(st.integers(-1, 4), max_size=40), st.sampled_from(["", "a", "abcd", "tenant-9", _guid(7)]),
       st.booleans(), st.integers(0, 5), st.booleans())
def test_decode_of_fixed_width_values_equals_take(codes, text, large, skip, mixed):
    """Values all of one length (GUIDs; sliced after ``skip`` bytes) take NumPy's take of
    fixed-width records, others (empty strings, values of several lengths) Arrow's take: both give
    Arrow's take, nulls included."""
    from licensecore.server import encode

    typ = pa.large_string() if large else pa.string()
    lengths = [text, text + "x", text, text, text] if mixed else [text] * 5
    values = pa.array(["z" * skip] + [re.sub("[^-]", str(i), t) for i, t in enumerate(lengths)], typ).slice(1)
    want = values.take(pa.array(codes, pa.int64(), mask=np.array(codes, np.int64) < 0))
    for part_rows in (0, 1 << 20):
        encode.DECODE_PART_ROWS, saved = part_rows, encode.DECODE_PART_ROWS
        try:
            got = encode.decode(values, np.array(codes, np.int64), typ)
        finally:
            encode.DECODE_PART_ROWS = saved
        assert got.type == typ
        assert got.to_pylist() == want.to_pylist()
