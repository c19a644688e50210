"""JSON in and out of the tool, one way: no output contains NaN or Infinity (which are not JSON,
and which browsers and other tools refuse), and no input nested deeper than a document of ours
ever is reaches the parser's recursion.

Writers go through dumps(): a float that is not finite is written as null. Readers go through
loads(): NaN and Infinity that another version, a crash or a hand left in a file are read as None,
and a document nested deeper than MAX_DEPTH is refused with a ValueError before it is parsed.
"""

from __future__ import annotations

import json
import math

MAX_DEPTH = 64  # our deepest documents (probe records: summaries of lists of lists) nest 4 levels


def finite(value):
    """The value with every non-finite float (and numpy float) replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value, **kwargs) -> str:
    """json.dumps with non-finite floats as null (and never NaN or Infinity in the text)."""
    try:  # the usual case, in C; the walk over every value only when something is not finite
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:
        return json.dumps(finite(value), allow_nan=False, **kwargs)


_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')  # deleted: all but brackets and quotes
_CHUNK = 1 << 20


def depth(text: str | bytes) -> int:
    """How deep the brackets of a JSON text nest (strings are skipped), without parsing it.

    Linear in time with no Python object per character: escaped backslashes and quotes are taken
    out (every quote left then opens or closes a string), then all but brackets and quotes; a
    bracket counts when an even number of quotes precede it. Memory: the text twice over while the
    escapes go, then a few bytes per bracket or quote, a megabyte of them at a time.
    """
    import numpy as np

    data = text.encode("utf-8") if isinstance(text, str) else text
    kept = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _STRUCTURE)
    deepest = level = quotes = 0
    for start in range(0, len(kept), _CHUNK):
        chunk = np.frombuffer(kept, np.uint8, min(_CHUNK, len(kept) - start), start)
        is_quote = chunk == ord('"')
        outside = (quotes + np.cumsum(is_quote)) % 2 == 0  # a closing quote itself counts as inside
        steps = np.where(outside & ((chunk == ord("[")) | (chunk == ord("{"))), 1, 0)
        steps -= outside & ((chunk == ord("]")) | (chunk == ord("}")))
        running = level + np.cumsum(steps)
        deepest, level, quotes = max(deepest, int(running.max())), int(running[-1]), quotes + int(is_quote.sum())
    return deepest


def loads(text: str | bytes, max_depth: int = MAX_DEPTH, strict: bool = False):
    """json.loads with NaN and Infinity read as None (or, `strict`, refused: they are not JSON);
    ValueError for a document nested deeper than max_depth (checked before parsing: the parser's
    recursion is never reached)."""
    if _may_nest_deep(text, max_depth) and depth(text) > max_depth:
        raise ValueError(f"nested more than {max_depth} levels deep")
    return json.loads(text, parse_constant=_refuse if strict else lambda name: None)


def _refuse(name: str):
    raise ValueError(f"{name} is not a number JSON has")


def _may_nest_deep(text, max_depth: int) -> bool:
    """A cheap first look: a text with fewer brackets than the limit cannot nest past it."""
    count = text.count(b"[" if isinstance(text, bytes) else "[") + text.count(b"{" if isinstance(text, bytes) else "{")
    return count > max_depth
