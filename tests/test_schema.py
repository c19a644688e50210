"""The design's guards: one description of the options reaching every surface with one default,
nan and inf refused at every door, the registries and their names in step, no import circle,
nothing but __main__ importing the command line, and no function body over 80 lines."""

import ast
import inspect
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnistsoftmax import options

PACKAGE = Path(__file__).resolve().parents[1] / "mnistsoftmax"
NON_FINITE = [math.nan, math.inf, -math.inf]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, name: str, modules) -> set[str]:
    """The package's modules that a module imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found - {"mnistsoftmax"} if name != "mnistsoftmax" else found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def test_no_import_circle():
    """Walking every import of the package (module level and inside functions) finds no circle."""
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt) :] + [nxt] if nxt in trail else [node, nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


# The floors of the package, bottom up (docs/reference/layout.md draws the same): a module imports
# from its own floor or those below, never from above. The modules stay in one flat package because
# the documented API names some of them by path (mnistsoftmax.functional, .losses, .datasets, .api,
# .sklearn); this table is where the layers are declared, and the test below holds them.
FLOORS = (
    ("ground", {"errors", "blas", "fileio", "jsontext", "registry", "schedules"}),
    ("maths and the model", {"functional", "activations", "losses", "models", "optim", "snapshots", "gradcheck"}),
    (
        "data and files",
        {"datasets", "images", "augment", "options", "config", "configs", "checkpoint", "live", "inference"},
    ),
    ("inspection's numbers", {"analysis", "calibration", "lab", "explain", "predict"}),
    ("training", {"training", "probes", "runs"}),
    ("outputs", {"plots", "export"}),
    ("front ends", {"api", "sklearn", "notebook", "cli", "web", "__main__", ""}),
)


def floor_of(module: str) -> int:
    name = module.removeprefix("mnistsoftmax").lstrip(".").split(".")[0]
    return next(i for i, (_, names) in enumerate(FLOORS) if name in names)


def test_imports_point_down_the_floors():
    """Every module sits on one floor of FLOORS, and imports only from its floor or below."""
    graph = _graph()
    upward = [f"{a} ({FLOORS[floor_of(a)][0]}) imports {b} ({FLOORS[floor_of(b)][0]})"
              for a, targets in graph.items() for b in targets
              if floor_of(b) > floor_of(a)]  # fmt: skip
    assert upward == []
    with pytest.raises(StopIteration):  # a module on no floor fails the test: a new one must be placed
        floor_of("mnistsoftmax.newcomer")
    assert floor_of("mnistsoftmax.models") < floor_of("mnistsoftmax.training") < floor_of("mnistsoftmax.cli")


def test_only_main_imports_the_command_line():
    """The command line is a front end: nothing in the package but __main__ imports it."""
    importers = {name for name, targets in _graph().items() if "mnistsoftmax.cli" in targets}
    assert importers == {"mnistsoftmax.__main__"}


def test_predict_imports_no_training_code():
    """predict stands on inference: no training loop, probes or augmentation behind it. (optim is
    reached: the options' schema takes the optimizers' names from its registry, and the checkpoint
    reader the names of their state; it imports nothing numpy has not.)"""
    graph = _graph()
    reached, todo = set(), ["mnistsoftmax.predict"]
    while todo:
        node = todo.pop()
        for nxt in graph[node] - reached:
            reached.add(nxt)
            todo.append(nxt)
    assert not reached & {"mnistsoftmax.training", "mnistsoftmax.probes", "mnistsoftmax.augment", "mnistsoftmax.runs"}


def test_no_function_body_over_80_lines():
    """Functions stay readable: none in the package is longer than 80 lines."""
    long = []
    for path in _modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.body[0].lineno + 1
                if length > 80:
                    long.append(f"{path.name}:{node.name} ({length} lines)")
    assert long == []


def _asks_the_kind(source: str) -> list[str]:
    """Where Python source compares with a model kind's name, or indexes by a parameter's name, or a
    model's sizes by "hidden" (in any quotes: the syntax tree sees the strings, not how they are written)."""
    from mnistsoftmax.models import MODELS, is_parameter_name

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                values = operand.elts if isinstance(operand, ast.Tuple | ast.List | ast.Set) else [operand]
                found += [f"line {node.lineno}: compares with {v.value!r}" for v in values
                          if isinstance(v, ast.Constant) and v.value in MODELS]  # fmt: skip
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            of_sizes = getattr(node.value, "attr", getattr(node.value, "id", None)) == "sizes"
            if is_parameter_name(node.slice.value) or (of_sizes and node.slice.value == "hidden"):
                found.append(f"line {node.lineno}: indexes by {node.slice.value!r}")
    return found


def test_no_code_outside_the_models_asks_the_models_kind():
    """Only models.py branches on a model's kind or the names of its parameters; the page's
    scripts walk the layers they are given."""
    offenders = []
    for name, path in _modules().items():
        if name != "mnistsoftmax.models":
            offenders += [f"{path.name} {where}" for where in _asks_the_kind(path.read_text(encoding="utf-8"))]
    import re

    from mnistsoftmax.models import MODELS

    names = "|".join(map(re.escape, MODELS))
    kind = re.compile(r"""["'`](?:""" + names + r""")["'`]|\bW[0-9]\b""")
    for js in (PACKAGE / "web" / "static").glob("*.js"):
        offenders += [f"{js.name}: {m.group()}" for m in kind.finditer(js.read_text(encoding="utf-8"))]
    assert offenders == []


def test_the_kind_guard_can_fail():
    """The guard above finds a comparison with a kind however it is quoted or spelled, and an index
    by a parameter's name; it passes code that only names a kind to build one."""
    for source in ("x = kind == 'mlp'", 'if "linear" != model.kind: pass', "y = k in ('mlp', 'other')",
                   "w = params['W2']", "w = params[\"b\"]", "h = model.sizes['hidden']"):  # fmt: skip
        assert _asks_the_kind(source), source
    assert _asks_the_kind("m = build('mlp', rng, [8])\nkind = options['model']\nh = config['hidden']") == []


REGISTRIES = {"model": ("registry", "MODELS"), "loss": ("registry", "LOSSES"), "optimizer": ("registry", "OPTIMIZERS"),
              "schedule": ("schedules", "SCHEDULES"), "activation": ("registry", "ACTIVATIONS")}  # fmt: skip
IMPLEMENTATIONS = {"model": ("models", "MODELS"), "loss": ("losses", "LOSSES"), "optimizer": ("optim", "OPTIMIZERS"),
                   "schedule": ("optim", "SCHEDULES"), "dataset": ("datasets", "DATASETS"),
                   "activation": ("activations", "ACTIVATIONS")}  # fmt: skip


@pytest.mark.parametrize("option", list(IMPLEMENTATIONS))
def test_every_name_in_the_registry_has_its_implementation(option):
    """The numpy-free registry's names are exactly the implementing modules' (in the same order), and
    each implementation carries the registry's own description, not a copy."""
    import importlib

    from mnistsoftmax import registry, schedules

    module_name, attribute = IMPLEMENTATIONS[option]
    implemented = getattr(importlib.import_module(f"mnistsoftmax.{module_name}"), attribute)
    described = {"model": registry.MODELS, "loss": registry.LOSSES, "optimizer": registry.OPTIMIZERS,
                 "schedule": schedules.SCHEDULES, "dataset": registry.DATASETS,
                 "activation": registry.ACTIVATIONS}[option]  # fmt: skip
    assert list(implemented) == list(described) == list(options.BY_NAME[option].choices)
    for name, entry in implemented.items():
        assert getattr(entry, "info", entry) is described[name], name


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["gradcheck", "--help"], ["predict", "--help"]])
def test_help_imports_no_numpy(args):
    """The command line's help (and so shell completion, which builds the same options) loads no numpy:
    the options' choices come from registry.py and schedules.py."""
    import subprocess
    import sys

    code = ("import sys\nfrom mnistsoftmax.cli import main\ntry:\n    main(sys.argv[1:], prog_name='mnistsoftmax')\n"
            "except SystemExit:\n    pass\nprint('numpy' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    assert "Usage:" in done.stdout and done.stdout.strip().splitlines()[-1] == "False", done.stdout[-300:]


@pytest.mark.parametrize("option", list(REGISTRIES))
def test_the_registries_are_the_one_list(option, monkeypatch):
    """An option's choices and its help are its registry's keys and descriptions, read when the
    schema is built: an entry added to the registry reaches the option and the page's form without
    another edit (shown by adding one and building the schema again)."""
    import importlib

    module_name, attribute = REGISTRIES[option]
    module = importlib.import_module(f"mnistsoftmax.{module_name}")
    registry = getattr(module, attribute)
    assert options.BY_NAME[option].choices == tuple(registry)
    assert all(f"{name} ({entry.help})" in options.BY_NAME[option].help for name, entry in registry.items())
    newcomer = next(iter(registry.values()))
    monkeypatch.setitem(registry, "newcomer", newcomer)
    rebuilt = {o.name: o for o in options.schema()}
    assert "newcomer" in rebuilt[option].choices and "newcomer (" in rebuilt[option].help
    assert "newcomer" in rebuilt[option].describe()["choices"]
    from mnistsoftmax import datasets

    assert options.BY_NAME["dataset"].choices == tuple(datasets.DATASETS)
    assert options.BY_NAME["dataset"].choices.count("custom") == 1


# ---- every option reaches every surface, with one default


def test_every_option_is_a_flag_and_a_config_key_with_its_default(tmp_path):
    """train's flags are the schema's options, in its order, with its defaults; each one is a
    config file key that the file checks."""
    from mnistsoftmax import config
    from mnistsoftmax.cli import train

    flags = {p.name: p for p in train.params if p.name not in ("config", "out", "resume")}
    assert list(flags) == [o.name for o in options.TRAIN_OPTIONS]
    for o in options.TRAIN_OPTIONS:
        default = flags[o.name].default
        if o.multiple:
            assert list(default or []) == list(o.default)
        else:
            assert (o.parse(default) if default is not None else None) == o.check(o.default), o.name
        path = tmp_path / f"{o.name}.toml"
        value = {"int": 3, "float": 0.5, "bool": True, "choice": None, "path": str(tmp_path), "text": "http://x/",
                 "ints": [3, 2]}  # fmt: skip
        v = o.choices[-1] if o.kind == "choice" else value[o.kind]
        path.write_text(f"{o.key} = {json.dumps(v)}\n")
        assert config.load(path) == {o.name: [v] if o.multiple else v}


def test_every_option_reaches_the_page_the_runs_api_and_the_estimator():
    """The page's form (/api/train/options), the runs API, SoftmaxClassifier() and api.train take
    every option their surface declares, with the same defaults."""
    from mnistsoftmax.sklearn import SoftmaxClassifier
    from mnistsoftmax.web.trainer import check_options, describe_options

    page = {d["key"]: d for d in describe_options()}
    expected_page = [o.key for o in options.TRAIN_OPTIONS if options.PAGE in o.surfaces]
    assert list(page) == expected_page and {"hflip", "loss", "probe-every", "dataset"} <= set(page)
    assert not {"data-dir", "mirror"} & set(page)  # a request never names a path or a URL
    params = SoftmaxClassifier().get_params()
    for o in options.TRAIN_OPTIONS:
        if options.PAGE in o.surfaces:
            default = page[o.key]["default"]
            assert (o.parse(default) if default is not None else None) == o.check(o.default) and page[o.key][
                "group"
            ] == o.group
            sample = o.default if o.default is not None else 1
            assert check_options({o.key: sample}) == {o.name: o.check(sample)}
        if options.ESTIMATOR in o.surfaces:
            assert params[o.name] == o.default, o.name
    assert set(params) == {o.name for o in options.TRAIN_OPTIONS if options.ESTIMATOR in o.surfaces} | {
        "random_state",
        "verbose",
    }
    import mnistsoftmax.api

    assert "options" in inspect.signature(mnistsoftmax.api.train).parameters


def test_page_train_and_estimator_defaults_agree():
    """The page's options, `train --help` and SoftmaxClassifier() agree on every default they share."""
    from mnistsoftmax.cli import main
    from mnistsoftmax.sklearn import SoftmaxClassifier
    from mnistsoftmax.web.trainer import describe_options

    help_text = " ".join(CliRunner().invoke(main, ["train", "--help"], terminal_width=400).output.split())
    params = SoftmaxClassifier().get_params()
    for d in describe_options():
        name = d["key"].replace("-", "_")
        if d["default"] is not None and d["kind"] != "bool":
            assert f"[default: {d['default']}" in help_text.split(f"--{d['key']} ", 1)[1], d["key"]
        if name in params:
            option = options.BY_NAME[name]
            assert option.check(params[name]) == (option.parse(d["default"]) if d["default"] is not None else None)


# ---- nan and inf refused at every door


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("flag", ["--lr", "--momentum", "--weight-decay", "--elastic-sigma", "--shift"])
def test_flags_refuse_non_finite_numbers(flag, value):
    """A flag given nan, inf or -inf is a usage error (exit 2) naming it."""
    from mnistsoftmax.cli import main

    result = CliRunner().invoke(main, ["train", flag, str(value)])
    assert result.exit_code == 2 and f"Invalid value for '{flag}'" in result.stderr, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_config_files_refuse_non_finite_numbers(tmp_path, value):
    """`lr = nan` is valid TOML; the config file check refuses it (exit 2, naming file and key)."""
    from mnistsoftmax.cli import main

    path = tmp_path / "c.toml"
    path.write_text(f"lr = {value}\nweight-decay = {value}\n")
    result = CliRunner().invoke(main, ["train", "--config", str(path)])
    assert result.exit_code == 2 and str(path) in result.stderr and "lr = " in result.stderr
    assert "not a finite number" in result.stderr or "not in the range" in result.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", math.inf])
def test_runs_api_refuses_non_finite_numbers(tmp_path, value):
    """POST /api/runs with a non-finite number answers 400 and starts nothing."""
    from starlette.testclient import TestClient

    from mnistsoftmax.web.app import create_app
    from mnistsoftmax.web.catalog import Catalog

    client = TestClient(create_app(Catalog(tmp_path), "127.0.0.1", 8765), base_url="http://127.0.0.1:8765")
    for key in ("lr", "momentum", "elastic-sigma"):
        body = json.dumps({key: value}, allow_nan=True)
        r = client.post("/api/runs", content=body, headers={"Content-Type": "application/json"})
        error = r.json()["error"]
        assert r.status_code == 400 and (f"--{key}" in error or "not a number JSON has" in error), r.text
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("name", ["lr", "momentum", "weight_decay", "elastic_sigma", "rotate"])
def test_estimator_and_api_refuse_non_finite_numbers(name, value):
    """SoftmaxClassifier refuses them at fit (ValueError); api.train before any work."""
    import numpy as np

    import mnistsoftmax
    from mnistsoftmax import MnistSoftmaxError
    from mnistsoftmax.sklearn import SoftmaxClassifier

    X, y = np.random.default_rng(0).random((20, 4)), np.arange(20) % 2
    with pytest.raises(ValueError, match=name):
        SoftmaxClassifier(**{name: value}).fit(X, y)
    with pytest.raises(MnistSoftmaxError, match=name):
        mnistsoftmax.train(**{name: value})


def test_schema_checks_by_hand():
    """Worked cases of the one check every door uses."""
    lr, epochs, model = options.BY_NAME["lr"], options.BY_NAME["epochs"], options.BY_NAME["model"]
    assert lr.check(1) == 1.0 and isinstance(lr.check(1), float)
    for bad, message in ((0, "not in the range x>0"), (True, "not a number"), ("0.1", "not a number")):
        with pytest.raises(options.OptionError, match=message):
            lr.check(bad)
    assert lr.parse("0.1") == 0.1 and epochs.parse("3") == 3
    with pytest.raises(options.OptionError, match="not an integer"):
        epochs.check(2.0)
    with pytest.raises(options.OptionError, match="not one of"):
        model.check("cnn")
    with pytest.raises(options.OptionError, match="NUL"):
        options.BY_NAME["data_dir"].check("a\x00b")
