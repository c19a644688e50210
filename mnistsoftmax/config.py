"""Configuration files: flat TOML whose keys are a command's option names (`batch-size = 128`).

The values become click's `default_map`, so the precedence is flag > file > built-in default with
no hand-written merging; each value is checked here against the option's own type and range, so
a mistake names the file and the key instead of surfacing later.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import click

from mnistsoftmax import MnistSoftmaxError


class ConfigError(MnistSoftmaxError):
    """A configuration file is unreadable, or has an unknown key or a wrong value."""


_PYTHON_TYPES = {
    click.INT: (int,),
    click.FLOAT: (int, float),
    click.STRING: (str,),
    click.BOOL: (bool,),
}


def _accepted_types(param: click.Parameter) -> tuple[type, ...]:
    t = param.type
    if isinstance(t, click.IntRange):
        return (int,)
    if isinstance(t, click.FloatRange):
        return (int, float)
    if isinstance(t, click.Choice | click.Path):
        return (str,)
    return _PYTHON_TYPES.get(t, (str, int, float, bool))


def option_keys(command: click.Command, skip=("config",)) -> dict[str, click.Option]:
    """The keys a config file may hold for `command` (its long option names without the dashes,
    `batch-size`) -> the options they set."""
    return {
        p.opts[0].lstrip("-"): p
        for p in command.params
        if isinstance(p, click.Option) and p.name not in skip and p.opts[0].startswith("--")
    }


def load_defaults(path: str | Path, command: click.Command, ctx: click.Context, skip=("config",)) -> dict:
    """Read a TOML file of option values for `command` -> {parameter name: value} for default_map."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    options = option_keys(command, skip)
    defaults = {}
    for key, value in table.items():
        param = options.get(key)
        if param is None:
            raise ConfigError(f"{path}: unknown key {key!r}; the keys are the option names: {', '.join(options)}")
        # A repeatable option (--mirror) takes one value or a list of them; click wants the list.
        values = value if param.multiple and isinstance(value, list) else [value]
        converted = [_convert(path, key, v, param, ctx) for v in values]
        defaults[param.name] = converted if param.multiple else converted[0]
    return defaults


def _convert(path: Path, key: str, value, param: click.Option, ctx: click.Context):
    """One TOML value checked against the option's type and converted as click would."""
    accepted = _accepted_types(param)
    # bool is a subclass of int in Python, but `epochs = true` is a mistake, not 1.
    if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
        expected = " or ".join(t.__name__ for t in accepted)
        if param.multiple:
            expected += f" (or a list of {expected})"
        raise ConfigError(f"{path}: {key} = {value!r} should be {expected}, not {type(value).__name__}")
    try:
        return param.type.convert(value, param, ctx)
    except click.BadParameter as exc:
        raise ConfigError(f"{path}: {key} = {value!r}: {exc.message}") from None


def resolve(command: click.Command, path: str | Path | None = None) -> dict:
    """A command's option defaults under a file's values: what the command would run with when
    given only --config (for scripts that redo a run elsewhere, e.g. in PyTorch)."""
    values = {p.name: p.default for p in command.params if isinstance(p, click.Option) and p.name != "config"}
    return {**values, **load_defaults(path, command, click.Context(command))} if path else values
