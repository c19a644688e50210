"""The readers of untrusted bytes, fuzzed: each reader's properties over generated inputs
(hypothesis), and every input that once failed, replayed from tests/corpus/ (scripts/fuzz.py
writes there)."""

import json

import pytest
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


def _inputs():
    from tests.fuzz_targets import CORPUS, TARGETS

    for name, (_, seeds, _) in TARGETS.items():
        for i, data in enumerate(seeds()):
            yield pytest.param(name, data, id=f"{name}-seed-{i}")
        for path in sorted((CORPUS / name).glob("*")):
            yield pytest.param(name, path.read_bytes(), id=f"{name}-{path.name}")


@pytest.mark.parametrize(("target", "data"), list(_inputs()))
def test_every_input_that_ever_failed_is_replayed(target, data, isolated_folders):
    """Each reader's seeds and every input scripts/fuzz.py found failing (tests/corpus/TARGET/):
    the reader's answer or its one-line error, nothing else."""
    from tests.fuzz_targets import TARGETS

    TARGETS[target][0](data)


def test_the_corpus_holds_each_class_the_fuzzer_found():
    """The corpus is not empty: the classes found so far (a header numpy cannot tokenize, an IDX
    header of 255 dimensions, records that are not objects, a 404 echoing a 3 kB path, an
    integer of 5,000 digits in a config file) each have an input there."""
    from tests.fuzz_targets import CORPUS, TARGETS

    assert all(any((CORPUS / name).glob("*")) for name in ("checkpoint", "idx", "metrics", "request", "config"))
    assert set(p.name for p in CORPUS.iterdir()) <= set(TARGETS)
