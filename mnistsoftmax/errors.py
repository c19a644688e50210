"""The ground floor: the one base of every error the library raises on bad input.

Every module imports it from here, never from the package's face (`mnistsoftmax/__init__.py`
re-exports it), so that no module below the front ends runs back up through the package.
"""


class MnistSoftmaxError(Exception):
    """Base of every error the library raises on bad input; the front ends turn it into one line
    (the command line's message, the server's JSON 4xx)."""


def quoted(value, limit: int = 60) -> str:
    """A value as an error message quotes it: its repr, cut to `limit` characters with an ellipsis,
    so that a message never echoes back megabytes of what it refuses."""
    if isinstance(value, int) and value.bit_length() > 256:  # repr of a huge int is slow, and says nothing
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
