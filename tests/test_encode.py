"""Id encoding: codes sort like the ids, and key look-ups agree with a plain dict."""

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from licensecore.server.encode import Dictionary, KeySpace

keys = st.lists(st.integers(-1, 40), max_size=30)


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
