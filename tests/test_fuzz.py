"""The readers of untrusted bytes, fuzzed: each reader's properties over generated inputs
(hypothesis), and every input that once failed, replayed from tests/corpus/ (scripts/fuzz.py
writes there)."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from mnistsoftmax import jsontext

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\\\\', max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\k', max_size=3), inner, max_size=3)
    ),  # fmt: skip
    max_leaves=30,
)


def nesting(value) -> int:
    if isinstance(value, list | dict):
        return 1 + max((nesting(v) for v in (value.values() if isinstance(value, dict) else value)), default=0)
    return 0


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES)
def test_json_depth_is_the_documents_nesting(value):
    """jsontext.depth, which never parses, gives the nesting of any document, brackets, quotes and
    backslashes inside its strings included."""
    text = json.dumps(value)
    assert jsontext.depth(text) == jsontext.depth(text.encode()) == nesting(value)


def test_json_depth_of_large_hostile_bodies():
    """8 MB bodies that took seconds and a gigabyte before (one long string with brackets beside
    it; many short strings with escaped quotes): the depth, right, through the linear path."""
    one_string = ('{"label": "' + "a" * 8_000_000 + '", "x": ' + "[" * 100 + "]" * 100 + "}").encode()
    assert jsontext.depth(one_string) == 101
    assert jsontext.depth(b'["\\"",' * 1_300_000) == 1_300_000
    assert jsontext.depth(b"[]" * 4_000_000) == 1
