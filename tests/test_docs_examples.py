"""Every fenced example of the README and the docs, run as written, in a scratch folder that holds
what a reader's folder would: `data/mnist` (the genuine MNIST of `make data`), `configs/`,
`scripts/`, `docs/examples/`, a model trained by `mnistsoftmax train --config mlp` as the last checkpoint, and the
images the examples name (`seven.png`, `two.png`, `zero.png`: MNIST test digits drawn 280 x 280,
black on white). HOME is that folder, so nothing of the user's is read or written.

How each kind of block runs (a file's blocks in order, in one folder, so that an example may use
what an earlier one wrote):
- `python` blocks with `>>>`: doctest (ELLIPSIS, NORMALIZE_WHITESPACE); a page's blocks share
  their names, as a reader's session would. Other `python` blocks: a fresh interpreter.
- `sh` and `console` blocks (`console`: the lines after `$ `): each command in bash, exit status 0
  unless said below. Three things are changed, and only these:
  - `mnistsoftmax train` gets `--epochs 1` (the docs' runs take 1-4 minutes each; the flag
    overrides the config file as it would for a reader, the rest of the command is as written);
  - a command whose shown output has `^C` is sent SIGINT after its first epoch: exit status 130,
    and the interrupted checkpoint is what the next command resumes;
  - `mnistsoftmax serve` runs until it prints `serving on`, then gets Ctrl-C; the blocks that
    `curl` the default address run with `mnistsoftmax serve --data-dir data/mnist` there.
  `pip install -e '.[EXTRAS]'` checks that the extras exist in pyproject.toml instead of
  installing (the suite already runs with every extra).
- Each page starts from the runs folder the fixture's training left (its model is `latest.npz`).
- A block preceded by `<!-- not run: REASON -->` is not run (it needs PyTorch or the network, or
  it is `make test` itself); its `mnistsoftmax` commands are still parsed by the command line, so
  a renamed option or a missing config fails here.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
DATA = ROOT / "data" / "mnist"
RUN_LANGUAGES = {"sh", "console", "python"}
NOT_RUN = re.compile(r"<!-- not run: (.+?) -->")


@dataclass
class Block:
    document: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    not_run: str | None  # the reason, when the block is marked

    @property
    def where(self) -> str:
        name = self.document.relative_to(ROOT) if self.document.is_relative_to(ROOT) else self.document.name
        return f"{name}:{self.line}"


def blocks_of(document: Path) -> list[Block]:
    lines = document.read_text(encoding="utf-8").split("\n")
    found, i = [], 0
    while i < len(lines):
        opening = re.match(r"^```(\S*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        marker = NOT_RUN.search(lines[i - 1]) if i else None
        found.append(Block(document, i + 1, opening.group(1), "\n".join(lines[i + 1 : end]),
                           marker.group(1) if marker else None))  # fmt: skip
        i = end + 1
    return found


def commands_of(block: Block) -> list[tuple[str, list[str]]]:
    """(command, the output the block shows for it): console blocks' `$ ` lines, or each line of an
    sh block (a trailing backslash continues it)."""
    commands: list[tuple[str, list[str]]] = []
    pending = ""
    for line in block.text.split("\n"):
        if block.language == "console" and not line.startswith("$ ") and not pending:
            if commands:
                commands[-1][1].append(line)
            continue
        line = line[2:] if block.language == "console" and not pending else line
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            commands.append((command, []))
    return commands


def without_comment(command: str) -> tuple[str, str]:
    """The command and its trailing `# comment` (outside quotes)."""
    quote = None
    for i, ch in enumerate(command):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or command[i - 1] in " \t"):
            return command[:i].rstrip(), command[i:]
    return command, ""


# --------------------------------------------------------------------------------------------
# The scratch folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    if not (DATA / "t10k-labels-idx1-ubyte").exists() and not (DATA / "t10k-labels-idx1-ubyte.gz").exists():
        if os.environ.get("MNISTSOFTMAX_REQUIRE_REAL_DATA"):
            pytest.fail("data/mnist is missing: run `make data`")
        pytest.skip("the examples use data/mnist: run `make data`")
    here = tmp_path_factory.mktemp("reader")
    (here / "data").mkdir()
    (here / "data" / "mnist").symlink_to(DATA)
    (here / "configs").symlink_to(ROOT / "configs")
    (here / "scripts").symlink_to(ROOT / "scripts")
    (here / "docs").mkdir()
    (here / "docs" / "examples").symlink_to(ROOT / "docs" / "examples")  # the images the tour names
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MNISTSOFTMAX_", "XDG_"))}
    env.update(HOME=str(here), MPLBACKEND="Agg", PYTHONPATH=str(ROOT),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")  # fmt: skip
    env["MNISTSOFTMAX_DATA_DIR"] = str(here / "cache")  # a download would land here, never in the user's cache
    write_digits(here)
    train = subprocess.run(["mnistsoftmax", "train", "--config", "mlp", "--data-dir", "data/mnist"],
                           cwd=here, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert train.returncode == 0, train.stderr[-2000:]
    shutil.copytree(runs_of(here), here / ".pristine-runs")
    return here, env


def runs_of(here: Path) -> Path:
    return here / ".local" / "share" / "mnistsoftmax" / "runs"


def as_after_training(here: Path) -> None:
    """The runs folder as the fixture's training left it: each page starts where a reader who has
    just run `mnistsoftmax train --config mlp` would (its `load()` is that model)."""
    shutil.rmtree(runs_of(here), ignore_errors=True)
    shutil.copytree(here / ".pristine-runs", runs_of(here))


def write_digits(here: Path) -> None:
    from PIL import Image

    from mnistsoftmax import datasets

    test = datasets.load("mnist", DATA, splits=("test",)).test
    for name, digit in (("seven", 7), ("two", 2), ("zero", 0)):
        image = test.images[np.flatnonzero(test.labels == digit)[0]]
        Image.fromarray(255 - image).resize((280, 280), Image.LANCZOS).save(here / f"{name}.png")


# --------------------------------------------------------------------------------------------
# Running commands


def check_extras(command: str) -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for spec in re.findall(r"\.\[([\w,-]+)\]", command):
        for extra in spec.split(","):
            assert extra in extras, f"the extra {extra!r} is not in pyproject.toml"


def run_command(command: str, shown: list[str], here: Path, env: dict, where: str) -> None:
    code, _comment = without_comment(command)
    words = shlex.split(code)
    if words[:2] == ["pip", "install"]:
        check_extras(code)
        return
    if words[:2] == ["mnistsoftmax", "serve"]:
        with Serving(code, here, env, where):
            return
    interrupted = any(line.strip() == "^C" for line in shown)
    if words[:2] == ["mnistsoftmax", "train"] and "--resume" not in words and not interrupted:
        code += " --epochs 1"
    if interrupted:
        run_interrupted(code, here, env, where)
        return
    done = subprocess.run(["bash", "-o", "pipefail", "-c", code], cwd=here, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, f"{where}: `{command}` exited {done.returncode}:\n{done.stderr[-3000:]}"


def run_interrupted(code: str, here: Path, env: dict, where: str) -> None:
    process = subprocess.Popen(["bash", "-c", "exec " + code], cwd=here, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    for line in process.stderr:
        if line.startswith("epoch "):
            process.send_signal(signal.SIGINT)
            break
    process.communicate(timeout=600)
    assert process.returncode == 130, f"{where}: `{code}` after Ctrl-C exited {process.returncode}"


class Serving:
    """`mnistsoftmax serve ...` in the background until the block is done; then Ctrl-C."""

    def __init__(self, code: str, here: Path, env: dict, where: str):
        self.code, self.here, self.env, self.where = code, here, env, where

    def __enter__(self):
        self.process = subprocess.Popen(["bash", "-c", "exec " + self.code], cwd=self.here, env=self.env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        line = self.process.stdout.readline()
        if not line.startswith("serving on http://"):
            self.process.kill()
            raise AssertionError(f"{self.where}: `{self.code}` printed {line!r}:\n{self.process.stderr.read()[-2000:]}")
        return self

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGINT)
        self.process.communicate(timeout=60)


def run_python(block: Block, here: Path, env: dict, names: dict, monkeypatch) -> None:
    if ">>>" not in block.text:
        done = subprocess.run([sys.executable, "-c", block.text], cwd=here, env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, f"{block.where}: exited {done.returncode}:\n{done.stderr[-3000:]}"
        return
    monkeypatch.chdir(here)
    for key in [k for k in os.environ if k.startswith(("MNISTSOFTMAX_", "XDG_"))]:
        monkeypatch.delenv(key)
    for key in ("HOME", "MNISTSOFTMAX_DATA_DIR", "MPLBACKEND"):
        monkeypatch.setenv(key, env[key])
    test = doctest.DocTestParser().get_doctest(block.text, names, block.where, str(block.document), block.line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    runner.run(test, out=report.append, clear_globs=False)
    assert not report, "".join(report)
    names.update(test.globs)


def check_parses(command: str, where: str, here: Path, monkeypatch) -> None:
    """A command of a block that is not run: `mnistsoftmax ...` parsed by the command line itself."""
    code, _ = without_comment(command)
    words = shlex.split(code)
    if words[:1] != ["mnistsoftmax"]:
        return
    from mnistsoftmax.cli import main

    monkeypatch.chdir(here)
    with main.make_context("mnistsoftmax", words[1:2]) as group:
        sub = main.get_command(group, words[1])
        assert sub is not None, f"{where}: no command {words[1]!r}"
        sub.make_context(words[1], words[2:], parent=group)


# --------------------------------------------------------------------------------------------
# The tests


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_runs_as_written(document, folder, monkeypatch):
    here, env = folder
    as_after_training(here)
    names: dict = {}
    ran = 0
    for block in blocks_of(document):
        if block.language not in RUN_LANGUAGES:
            continue
        if block.not_run:
            for command, _ in commands_of(block) if block.language != "python" else []:
                check_parses(command, block.where, here, monkeypatch)
            continue
        if block.language == "python":
            run_python(block, here, env, names, monkeypatch)
        elif any(command.startswith("curl ") or "$(curl " in command for command, _ in commands_of(block)):
            with Serving("mnistsoftmax serve --data-dir data/mnist", here, env, block.where):
                for command, shown in commands_of(block):
                    run_command(command, shown, here, env, block.where)
        else:
            for command, shown in commands_of(block):
                run_command(command, shown, here, env, block.where)
        ran += 1
    assert ran or not any(b.language in RUN_LANGUAGES and not b.not_run for b in blocks_of(document))


def test_the_collector_finds_the_examples():
    """The collector's own check: it sees the blocks a reader sees, and the marks say why."""
    every = [b for d in DOCUMENTS for b in blocks_of(d)]
    languages = {b.language for b in every}
    assert languages <= RUN_LANGUAGES | {"", "text", "toml", "json"}, languages
    run = [b for b in every if b.language in RUN_LANGUAGES and not b.not_run]
    assert len(run) >= 25 and all(len(b.not_run) > 10 for b in every if b.not_run)
    tour = next(b for b in blocks_of(ROOT / "README.md") if b.language == "console")
    assert [c.split()[1] for c, _ in commands_of(tour)][:3] == ["train", "eval", "eval"]
    resume = next(b for b in blocks_of(ROOT / "docs/how-to/resume.md") if b.language == "console")
    assert commands_of(resume)[0][1][0] == "^C"
    assert without_comment("echo '#' x  # note") == ("echo '#' x", "# note")
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300  # the landing page; the rest is the site


def test_a_failing_example_fails(folder, tmp_path, monkeypatch):
    """A block whose command fails, or whose doctest output is wrong, is reported with its place."""
    page = tmp_path / "page.md"
    page.write_text("```sh\nmnistsoftmax eval nosuch.npz\n```\n\n```python\n>>> 1 + 1\n3\n```\n")
    here, env = folder
    sh, python = blocks_of(page)
    with pytest.raises(AssertionError, match="page.md:1"):
        run_command(sh.text, [], here, env, "page.md:1")
    with pytest.raises(AssertionError, match=r"Expected:\s+3\s+Got:\s+2"):
        run_python(python, here, env, {}, monkeypatch)
    import click

    with pytest.raises(click.NoSuchOption):  # a block that is not run still has its options checked
        check_parses("mnistsoftmax train --sede 0", "page.md:9", here, monkeypatch)
