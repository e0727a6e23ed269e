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
