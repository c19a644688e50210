"""Configuration files: flat TOML whose keys are the training options' keys (`batch-size = 128`).

The values are checked here against the options' schema (options.py), so a mistake names the
file and the key instead of surfacing later; the command line passes them to click as its
`default_map`, so the precedence is flag > file > built-in default with no hand-written merging.
"""

from __future__ import annotations

import re
from pathlib import Path

from mnistsoftmax.errors import MnistSoftmaxError, quoted
from mnistsoftmax.options import TRAIN_OPTIONS, Option, OptionError
from mnistsoftmax.options import resolve as resolve_options

MAX_BYTES = 1 << 20  # a config file is a few hundred bytes; /dev/zero or a stray binary is not one


class ConfigError(MnistSoftmaxError):
    """A configuration file is unreadable, or has an unknown key or a wrong value."""


# The TOML types each kind of option takes (bool is never taken for a number).
_TOML_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "choice": (str,), "path": (str,),
               "text": (str,), "ints": (int,)}  # fmt: skip


SHIPPED = Path(__file__).parent / "configs"  # the recommended settings, in the package


def shipped() -> list[str]:
    """The names of the configurations that ship with the package (mlp, linear, ...)."""
    return sorted(p.stem for p in SHIPPED.glob("*.toml"))


def find(name_or_path: str | Path) -> Path:
    """A config file: a path, or the name of a shipped one (`mlp` for configs/mlp.toml), which
    works from any folder and after a plain `pip install`."""
    path = Path(name_or_path)
    if not path.exists() and path.suffix == "" and path.name == str(name_or_path):
        candidate = SHIPPED / f"{path.name}.toml"
        if candidate.is_file():
            return candidate
        raise ConfigError(f"no config file {name_or_path!r}, and no shipped config of that name: the shipped "
                          f"ones are {', '.join(shipped())}")  # fmt: skip
    return path


MAX_KEY_PARTS = 64  # our keys have one part; tomllib takes 0.03 s at 2,000 parts and 11 s at 20,000
# A part of a dotted key: bare, or quoted. Possessive (nothing given back) and started only where a
# bare part starts, so that finding them is linear: a plain + here made a 24 kB number take 5 s.
_KEY_PART = r"""(?:(?<![A-Za-z0-9_+-])[A-Za-z0-9_+-]++|"[^"\\\n]*+"|'[^'\n]*+')"""
_DOTTED = re.compile(_KEY_PART + r"(?:[ \t]*+\.[ \t]*+" + _KEY_PART + ")++")


def read_table(path: str | Path) -> dict:
    """The TOML table of a file, or ConfigError naming the file and what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"cannot read config file {path}: no such file")
    if not path.is_file():  # a FIFO would block the read, /dev/zero never end it
        raise ConfigError(f"{path} is not a regular file, so not a config file")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_BYTES:,} bytes: not a config file")
    try:
        text = data.decode("utf-8")
        parts = max((m.group().count(".") + 1 for m in _DOTTED.finditer(text)), default=1)
        if parts > MAX_KEY_PARTS:  # tomllib's time grows with the square of a dotted key's parts
            raise ConfigError(f"{path} has a dotted key or number of {parts:,} parts: a config file is a flat list "
                              "of option names")  # fmt: skip
        import tomllib  # here: the command line lists the shipped configs without parsing one

        return tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file in UTF-8: not a config file") from None
    except ValueError as exc:  # TOMLDecodeError, or an integer of thousands of digits
        raise ConfigError(f"{path} is not valid TOML: {str(exc)[:200]}") from None
    except RecursionError:
        raise ConfigError(f"{path} is nested too deeply: a config file is a flat list of keys") from None


def load(path: str | Path, schema: tuple[Option, ...] = TRAIN_OPTIONS) -> dict:
    """A config file's values (a path, or a shipped config's name), checked against the schema ->
    {parameter name: value}."""
    path = find(path)
    table = read_table(path)
    by_key = {o.key: o for o in schema}
    values = {}
    for key, value in table.items():
        option = by_key.get(key)
        if option is None:
            raise ConfigError(f"{path}: unknown key {quoted(key)}; the keys are the option names: {', '.join(by_key)}")
        listed = option.multiple or option.kind == "ints"  # hidden = [512, 256]
        items = value if listed and isinstance(value, list) else [value]
        for item in items:
            _check_type(path, key, item, option)
        try:
            values[option.name] = option.check(value)
        except OptionError as exc:
            raise ConfigError(f"{path}: {key} = {quoted(value)}: {exc}") from None
    return values


def _check_type(path, key: str, value, option: Option) -> None:
    accepted = _TOML_TYPES[option.kind]
    if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
        expected = " or ".join(t.__name__ for t in accepted)
        if option.multiple or option.kind == "ints":
            expected += f" (or a list of {expected})"
        raise ConfigError(f"{path}: {key} = {quoted(value)} should be {expected}, not {type(value).__name__}")


def resolve(path: str | Path | None = None) -> dict:
    """The training options' defaults under a file's values: what `train --config PATH` runs with
    (for scripts that redo a run elsewhere, e.g. in PyTorch)."""
    return resolve_options(load(path) if path is not None else {})
