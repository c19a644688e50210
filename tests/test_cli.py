"""The command line through CliRunner: exit codes, messages, files written."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnistsoftmax import checkpoint, losses
from mnistsoftmax.activations import ACTIVATIONS
from mnistsoftmax.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def train_tiny(tiny_data, *extra):
    return invoke("train", "--dataset", "custom", "--data-dir", tiny_data, "--epochs", 2, "--hidden", 32, *extra)


def read_records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_train_then_eval_with_defaults(tiny_data):
    """train writes the default checkpoint and metrics; eval finds both it and its data by itself."""
    result = train_tiny(tiny_data, "--log-every", 2)
    assert result.exit_code == 0, result.output
    assert "loss before training: 2.3" in result.stderr
    assert "config: " in result.stderr and "epoch 2/2" in result.stderr
    assert "test accuracy" in result.stdout
    ckpt = checkpoint.default_path()
    assert ckpt.exists()
    records = read_records(checkpoint.metrics_path(ckpt))
    assert [r["type"] for r in records][0] == "init" and records[-1]["type"] == "test"
    assert abs(records[0]["loss"] - math.log(10)) < 0.1
    assert [r["epoch"] for r in records if r["type"] == "epoch"] == [1, 2]
    assert any(r["type"] == "step" for r in records)

    result = invoke("eval", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert 0.9 <= report["accuracy"] <= 1.0  # a fraction, and the synthetic digits are easy
    assert len(report["per_class"]) == 10 and np.array(report["confusion"]).shape == (10, 10)
    assert np.array(report["confusion"]).sum() == report["samples"] == 200
    assert report["accuracy"] == pytest.approx(np.trace(report["confusion"]) / 200)

    result = invoke("eval", ckpt)
    assert result.exit_code == 0
    assert "confusion matrix" in result.stdout and "per-class accuracy" in result.stdout


def test_metrics_record_each_early_step(tiny_data):
    """The first fall of the loss from ln 10 is in the metrics file step by step: a record for each
    of the first --log-every steps (the loss of that one step), then one per --log-every steps."""
    result = train_tiny(tiny_data, "--batch-size", 8, "--epochs", 1)  # 540 images: 68 steps
    assert result.exit_code == 0, result.output
    steps = [r for r in read_records(checkpoint.metrics_path(checkpoint.default_path())) if r["type"] == "step"]
    assert [r["step"] for r in steps] == [*range(1, 51)]
    assert [r["steps"] for r in steps] == [1] * 50
    assert abs(steps[0]["loss"] - math.log(10)) < 0.2 and steps[48]["loss"] < 0.5 * steps[0]["loss"]
    # the record at step 50 is that step's own loss: no window that still holds the first steps'
    # losses (a mean of steps 1-50 sat well above step 49's, a jump up in every curve)
    assert steps[49]["loss"] < 0.5 * steps[0]["loss"]


def test_checkpoint_stores_resolved_config(tiny_data, tmp_path):
    """The checkpoint's metadata holds the configuration, data set, normalisation and metrics."""
    out = tmp_path / "run" / "m.npz"
    assert train_tiny(tiny_data, "--model", "linear", "--out", out).exit_code == 0
    _, meta = checkpoint.load(out)
    assert meta["config"]["model"] == "linear" and meta["config"]["epochs"] == 2
    assert meta["dataset"] == "custom" and set(meta["normalization"]) == {"mean", "std"}
    assert meta["config"]["data_dir"] == str(tiny_data.resolve())  # absolute: eval works from anywhere
    assert 0 < meta["metrics"]["test_accuracy"] <= 1
    assert (tmp_path / "run" / "m.metrics.jsonl").exists()


def test_config_file_under_flags(tiny_data, tmp_path):
    """Values come from the TOML file unless a flag overrides them."""
    config = tmp_path / "c.toml"
    config.write_text('model = "linear"\nepochs = 1\nbatch-size = 50\nlr = 0.02\n')
    out = tmp_path / "m.npz"
    result = invoke(
        "train", "--config", config, "--epochs", 2, "--dataset", "custom", "--data-dir", tiny_data, "--out", out
    )
    assert result.exit_code == 0, result.output
    _, meta = checkpoint.load(out)
    assert meta["config"]["model"] == "linear"  # from the file
    assert meta["config"]["batch_size"] == 50 and meta["config"]["lr"] == 0.02
    assert meta["config"]["epochs"] == 2  # the flag wins


@pytest.mark.parametrize(
    "content, message",
    [
        ("epoch = 3\n", "unknown key 'epoch'"),
        ("epochs = 2.5\n", "epochs = 2.5 should be int, not float"),
        ("epochs = true\n", "should be int, not bool"),
        ('model = "cnn"\n', "model = 'cnn'"),
        ("epochs = 0\n", "epochs = 0"),
        ("epochs = [\n", "is not valid TOML"),
    ],
)
def test_bad_config_file(tmp_path, content, message):
    """A bad key or value is a usage error naming the file and the key."""
    config = tmp_path / "bad.toml"
    config.write_text(content)
    result = invoke("train", "--config", config)
    assert result.exit_code == 2
    assert message in result.stderr and str(config) in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "line, expected",
    [
        ('mirror = "http://127.0.0.1:1/a/"\n', ["http://127.0.0.1:1/a/"]),
        (
            'mirror = ["http://127.0.0.1:1/a/", "http://127.0.0.1:1/b/"]\n',
            ["http://127.0.0.1:1/a/", "http://127.0.0.1:1/b/"],
        ),
    ],
)
def test_config_file_gives_one_mirror_or_several(tiny_data, tmp_path, line, expected):
    """The repeatable --mirror takes a string or a list in TOML, and the run records them all."""
    config = tmp_path / "c.toml"
    config.write_text('model = "linear"\nepochs = 1\n' + line)
    out = tmp_path / "m.npz"
    result = invoke("train", "--config", config, "--dataset", "custom", "--data-dir", tiny_data, "--out", out)
    assert result.exit_code == 0, result.output
    assert checkpoint.load(out)[1]["config"]["mirror"] == expected


def test_config_file_mirror_of_the_wrong_type(tmp_path):
    """A mirror list with a number in it is a usage error naming the key."""
    config = tmp_path / "c.toml"
    config.write_text('mirror = ["http://127.0.0.1:1/a/", 3]\n')
    result = invoke("train", "--config", config)
    assert result.exit_code == 2
    assert "mirror = 3 should be str (or a list of str), not int" in result.stderr


def test_shipped_configs_are_valid(tmp_path):
    """configs/*.toml load without error (the option names and types are right)."""
    from mnistsoftmax.config import load

    for name in ("linear", "mlp"):
        defaults = load(f"configs/{name}.toml")
        assert defaults["model"] == name and defaults["epochs"] >= 1


@pytest.mark.parametrize(
    "args",
    [
        ["--epochs", "0"],
        ["--batch-size", "-1"],
        ["--hidden", "0"],
        ["--lr", "0"],
        ["--lr", "-0.1"],
        ["--momentum", "1"],
        ["--momentum", "-0.1"],
        ["--val-split", "1"],
        ["--weight-decay", "-1"],
        ["--model", "cnn"],
        ["--dataset", "cifar"],
    ],
)
def test_invalid_options_are_usage_errors(args):
    """Out-of-range or unknown option values exit with status 2 before any work."""
    result = invoke("train", *args)
    assert result.exit_code == 2
    assert "Invalid value" in result.stderr


def test_divergence_writes_no_checkpoint(tiny_data, tmp_path):
    """A far too large learning rate stops with advice and leaves no checkpoint."""
    out = tmp_path / "m.npz"
    result = train_tiny(tiny_data, "--lr", "1e30", "--out", out)
    assert result.exit_code == 1
    assert "lower learning rate" in result.stderr and "Traceback" not in result.output
    assert not out.exists()


def test_data_errors_are_one_line(tmp_path):
    """A folder with no data set: exit 1, one line, no traceback."""
    result = invoke("train", "--dataset", "custom", "--data-dir", tmp_path)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("Error: ") and "has no train-images-idx3-ubyte" in lines[-1]
    assert sum(line.startswith("Error") for line in lines) == 1 and "Traceback" not in result.output
    result = invoke("train", "--dataset", "custom")
    assert result.exit_code == 1 and "needs --data-dir" in result.stderr


def test_eval_without_checkpoint_says_how_to_make_one():
    """No checkpoint yet: exit 1 and a pointer to `mnistsoftmax train`."""
    result = invoke("eval")
    assert result.exit_code == 1 and "mnistsoftmax train" in result.stderr


def test_eval_of_a_file_that_is_not_a_checkpoint(tmp_path):
    """A random file as checkpoint is refused cleanly."""
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not a zip")
    result = invoke("eval", bad)
    assert result.exit_code == 1 and "not a mnistsoftmax checkpoint" in result.stderr


def test_gradcheck_command():
    """gradcheck prints every parameter of every model at every depth up to --hidden's, under every
    loss, with its relative error, all ok."""
    from mnistsoftmax.gradcheck import nets
    from mnistsoftmax.models import layer_names

    result = invoke("gradcheck", "--hidden", "8,5", "--batch-size", 4)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[:-4] for line in lines] == [
        [kind, *([",".join(map(str, widths)), activation] if widths else []), loss, name]
        for kind, widths, activation in nets("all", [8, 5])
        for loss in losses.LOSSES
        for pair in layer_names(len(widths))
        for name in pair
    ]
    assert len(lines) == len(losses.LOSSES) * (2 + len(ACTIVATIONS) * (4 + 6))
    assert all(line.endswith("ok") for line in lines)


def test_download_command(registered_tiny, http_server):
    """download fetches into the cache and prints the folder."""
    served, _ = registered_tiny
    result = invoke("download", "--mirror", http_server(served))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("mnist")


def test_python_dash_m():
    """`python -m mnistsoftmax` runs the same command line."""
    proc = subprocess.run([sys.executable, "-m", "mnistsoftmax", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "train" in proc.stdout


def test_several_mirrors_in_order(registered_tiny, http_server):
    """--mirror may be repeated: a failing first mirror is passed over for the next."""
    served, _ = registered_tiny
    url = http_server(served)
    result = invoke("download", "--mirror", url + "403/", "--mirror", url)
    assert result.exit_code == 0, result.output


def test_choices_match_the_library():
    """The CLI lists its choices without importing the library (names.py, for start-up); they must
    stay in step with the registries."""
    from mnistsoftmax import datasets, losses, models, optim
    from mnistsoftmax.cli import train

    choices = {p.name: tuple(p.type.inner.choices) for p in train.params if hasattr(p.type, "inner")
               and hasattr(p.type.inner, "choices")}  # fmt: skip
    assert choices["schedule"] == tuple(optim.SCHEDULES)
    assert choices["model"] == tuple(models.MODELS)
    assert choices["loss"] == tuple(losses.LOSSES)
    assert set(choices["dataset"]) == set(datasets.DATASETS)


def test_resolve_gives_what_train_would_run_with(tmp_path):
    """config.resolve: train's defaults, overridden by a config file's (checked) values."""
    from mnistsoftmax.config import resolve

    defaults = resolve()
    assert defaults["hidden"] == [256] and defaults["lr"] == 0.05 and "config" not in defaults
    resolved = resolve("configs/mlp.toml")
    assert resolved["hidden"] == [256] and resolved["weight_decay"] == 2e-4 and resolved["nesterov"] is True
    # the recommended run trains on plain cross entropy: its loss goes toward 0, as the tutorial says
    assert resolved["label_smoothing"] == 0.0 and resolved["loss"] == "cross-entropy" and resolved["log_every"] == 50


def test_eval_when_the_custom_training_folder_is_gone(tiny_data, tmp_path):
    """A custom data set has no other copy: eval says where the data was and to pass --data-dir."""
    moved = tmp_path / "moved"
    assert train_tiny(tiny_data, "--model", "linear").exit_code == 0
    tiny_data.rename(moved)
    result = invoke("eval")
    assert result.exit_code == 1
    assert f"{tiny_data}, is gone: pass --data-dir" in result.stderr
    assert invoke("eval", "--data-dir", moved).exit_code == 0


def test_eval_and_plot_when_a_known_data_set_has_moved(registered_tiny, tmp_path):
    """MNIST trained from a folder since deleted: eval and plot read the test set from the cache instead."""
    import os
    import shutil

    served, _ = registered_tiny
    folder = tmp_path / "my-mnist"
    shutil.copytree(served, folder)
    result = invoke("train", "--data-dir", folder, "--model", "linear", "--epochs", 1)
    assert result.exit_code == 0, result.output
    shutil.copytree(served, Path(os.environ["MNISTSOFTMAX_DATA_DIR"]) / "mnist")  # the cache holds a copy
    shutil.rmtree(folder)
    result = invoke("eval", "--json")
    assert result.exit_code == 0, result.output
    assert f"{folder}, is gone: using the mnist cache instead" in result.stderr
    assert json.loads(result.stdout)["samples"] == 200
    result = invoke("plot", "--out", tmp_path / "figures")
    assert result.exit_code == 0, result.output
    assert "is gone: using the mnist cache instead" in result.stderr and (tmp_path / "figures/index.html").exists()


def test_a_log_of_train_has_no_progress_bar_debris(tiny_data, tmp_path):
    """With stderr redirected to a file, no progress bar is drawn: the log holds whole lines, no
    carriage returns, and still one line per epoch."""
    import os

    log = tmp_path / "train.log"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    with open(log, "wb") as err:
        done = subprocess.run([sys.executable, "-m", "mnistsoftmax", "train", "--dataset", "custom", "--data-dir",
                               str(tiny_data), "--epochs", "2", "--out", str(tmp_path / "m.npz")], stderr=err,
                              stdout=subprocess.PIPE, env=env)  # fmt: skip
    assert done.returncode == 0
    text = log.read_bytes()
    assert b"\r" not in text and b"batch/s" not in text
    assert text.count(b"\nepoch ") == 2


def test_shell_completion_through_click():
    """The README's completion: click's bash completion offers the commands and the options."""
    env = {"_MNISTSOFTMAX_COMPLETE": "bash_complete", "COMP_WORDS": "mnistsoftmax tr", "COMP_CWORD": "1"}
    result = CliRunner().invoke(main, [], env=env, prog_name="mnistsoftmax", complete_var="_MNISTSOFTMAX_COMPLETE")
    assert "plain,train" in result.output.splitlines()
    env.update(COMP_WORDS="mnistsoftmax train --elastic", COMP_CWORD="2")
    result = CliRunner().invoke(main, [], env=env, prog_name="mnistsoftmax", complete_var="_MNISTSOFTMAX_COMPLETE")
    assert {"plain,--elastic-alpha", "plain,--elastic-sigma"} <= set(result.output.splitlines())


def test_a_net_too_large_for_memory_is_one_line(tiny_data, tmp_path):
    """--hidden far beyond the machine, or deeper than the package trains: a usage error naming the
    bound, exit 2, nothing written; a malformed list says how widths are written."""
    out = tmp_path / "runs" / "huge.npz"
    for hidden, message in (("2000000000", "2000000000 is not in the range 1<=x<=65536"),
                            ("8,8,8,8,8,8,8,8,8", "9 integers, where it takes 1 to 8"),
                            ("512,,256", "'' is not an integer (widths are written 512 or 512,256)")):  # fmt: skip
        result = CliRunner().invoke(main, ["train", "--dataset", "custom", "--data-dir", str(tiny_data),
                                           "--hidden", hidden, "--out", str(out)])  # fmt: skip
        assert result.exit_code == 2, result.output
        assert message in result.stderr and "Traceback" not in result.output
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


@pytest.mark.parametrize("command", [["train"], ["gradcheck"]])
def test_a_negative_seed_is_a_usage_error(command):
    """numpy's generators take seeds from 0 up; -1 was a ValueError traceback."""
    result = CliRunner().invoke(main, [*command, "--seed", "-1"])
    assert (
        result.exit_code == 2
        and "Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295." in result.stderr
    )


def test_label_smoothing_from_a_config_file_and_flags(tiny_data, tmp_path):
    """label-smoothing in a TOML config reaches the run and its checkpoint, a flag overrides it;
    values outside [0, 1) are usage errors; gradcheck checks the smoothed loss by default."""
    config_file = tmp_path / "smooth.toml"
    config_file.write_text('model = "mlp"\nlabel-smoothing = 0.2\n')
    result = train_tiny(tiny_data, "--config", config_file)
    assert result.exit_code == 0, result.output
    assert "label-smoothing=0.2" in result.stderr
    _, meta = checkpoint.load(checkpoint.default_path())
    assert meta["config"]["label_smoothing"] == 0.2
    result = train_tiny(tiny_data, "--config", config_file, "--label-smoothing", 0.05)
    assert checkpoint.load(checkpoint.default_path())[1]["config"]["label_smoothing"] == 0.05
    for bad in ("1", "-0.1", "abc"):
        result = invoke("train", "--label-smoothing", bad)
        assert result.exit_code == 2 and "--label-smoothing" in result.stderr
    result = invoke("gradcheck", "--hidden", 8, "--batch-size", 4, "--label-smoothing", 0.3)
    # both models, the mlp under every activation, every loss
    assert result.exit_code == 0 and result.stdout.count(" ok") == (2 + 4 * len(ACTIVATIONS)) * len(losses.LOSSES)


def test_a_train_without_a_terminal_imports_no_progress_bar(tmp_path):
    """Without a terminal on stderr there is no bar to draw, and tqdm (30 ms with asyncio) is not
    imported; the epoch lines are written all the same."""
    from tests.conftest import write_dataset

    write_dataset(tmp_path / "data")
    code = (
        "import sys\nfrom mnistsoftmax.cli import main\n"
        "try:\n    main(sys.argv[1:], prog_name='mnistsoftmax')\n"
        "except SystemExit as exit:\n"
        "    print('tqdm imported' if any(m.startswith('tqdm') for m in sys.modules) else 'no tqdm', exit.code)\n"
    )
    flags = ["train", "--dataset", "custom", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
             "--out", str(tmp_path / "run.npz")]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, *flags], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines()[-1] == "no tqdm 0", done.stderr[-2000:]
    assert "epoch 1/1" in done.stderr and "\r" not in done.stderr
