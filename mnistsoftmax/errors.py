"""The ground floor: the one base of every error the library raises on bad input.

Every module imports it from here, never from the package's face (`mnistsoftmax/__init__.py`
re-exports it), so that no module below the front ends runs back up through the package.
"""


class MnistSoftmaxError(Exception):
    """Base of every error the library raises on bad input; the front ends turn it into one line
    (the command line's message, the server's JSON 4xx)."""
