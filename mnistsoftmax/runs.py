"""A training run, from its configuration to the files it leaves behind.

    finished     NAME.npz and NAME.metrics.jsonl (the metrics renamed into place at the end)
    stopped      NAME.interrupted.npz and NAME.interrupted.metrics.jsonl, resumable bit for bit;
                 a finished NAME.npz from before is left as it was
    failed       nothing new (diverged, killed, an error): the partial metrics file is removed
                 or, after a kill, left under its hidden temporary name

`config` is the dict of the training options (options.TRAIN_OPTIONS, parameter names as keys).
No printing: progress and log lines go through the Hooks the caller passes.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistsoftmax import checkpoint, datasets, inference, optim, options, probes, snapshots, training
from mnistsoftmax.errors import MnistSoftmaxError, quoted


@dataclass
class Resumable:
    """What an interrupted checkpoint holds: the run's settings and where it stood."""

    path: Path
    config: dict
    out: Path  # where the finished checkpoint goes
    model: object
    state: training.TrainState
    records: list[dict]
    snapshots: snapshots.Snapshots | None  # those taken before the interruption


def load_resumable(path: Path) -> Resumable:
    model, meta, optimizer_state = checkpoint.load_resumable(path)
    try:
        state = training.TrainState.from_meta(meta["resume"], optimizer_state)
        np.random.default_rng().bit_generator.state = state.rng_state  # a generator state it can take
        resumable = Resumable(Path(path), dict(meta["config"]), Path(meta["out"]), model, state,
                              _saved_records(meta["records"]), checkpoint.load_snapshots(path, model))  # fmt: skip
    except training.TrainStateError as exc:
        raise checkpoint.CheckpointError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise checkpoint.CheckpointError(f"{path}: the saved training state is incomplete ({quoted(exc)})") from None
    try:  # the state this run's optimizer will take back, checked before any work
        training.optimizer_of(settings_of(resumable.config), model).load_state_dict(optimizer_state)
    except optim.OptimizerStateError as exc:
        raise checkpoint.CheckpointError(f"{path}: {exc}") from None
    return resumable


def _saved_records(records) -> list[dict]:
    """An interrupted run's records so far, checked: a list of records with a type, the first of
    them the loss before training (the finished checkpoint reports it)."""
    if not isinstance(records, list) or not all(isinstance(r, dict) and isinstance(r.get("type"), str)
                                                for r in records):  # fmt: skip
        raise training.TrainStateError("the saved records are not a list of records with a type")
    init = [r for r in records if r["type"] == "init"]
    if len(init) != 1 or isinstance(init[0].get("loss"), bool) or not isinstance(init[0].get("loss"), int | float) \
            or not math.isfinite(init[0]["loss"]):  # fmt: skip
        raise training.TrainStateError("the saved records do not hold the loss before training once")
    return list(records)


class Stopped(MnistSoftmaxError):
    """The run stopped on request and saved a resumable checkpoint at `saved`."""

    def __init__(self, interrupted: training.Interrupted, saved: Path):
        super().__init__(f"{interrupted}: saved {saved}")
        self.saved = saved


@dataclass
class Outcome:
    out: Path
    test: inference.Evaluation


def settings_of(config: dict) -> training.TrainSettings:
    """The training options -> the loop's settings (configurations from before distortions, dropout
    or the choice of loss existed have none of them: the loop's own defaults then apply)."""
    from mnistsoftmax.augment import Distortion

    distortion = Distortion.from_config(config)
    return training.TrainSettings.of(
        config,
        distortion=distortion if distortion.active else None,
        # None (the option's default) is about PROBES_PER_EPOCH probes an epoch; configurations from before
        # probes existed have none.
        probe_every=config.get("probe_every", 0),
    )


def resume_config(resume: Resumable, data_dir: Path | None = None, mirror=(), source: str | None = None) -> dict:
    """The configuration a resumed run goes on with: its own, but the data may live elsewhere now."""
    config = dict(resume.config)
    if data_dir is not None:
        config["data_dir"] = str(Path(data_dir).resolve())
    if mirror:
        config["mirror"] = list(mirror)
    if source is not None:
        config["source"] = source
    return config


class DataGone(MnistSoftmaxError):
    """The custom data set a checkpoint was trained from has moved."""


def trained_data_dir(config: dict, dataset: str, log=None) -> str | None:
    """The folder a checkpoint was trained from, when it still exists. Once moved or deleted, a
    known data set comes from the cache instead (its content is checked by hash either way); a
    custom one has no other copy, so the user is told to say where it went."""
    folder = config.get("data_dir")
    if folder is None or Path(folder).is_dir():
        return folder
    if dataset == "custom":
        raise DataGone(
            f"the folder this checkpoint was trained from, {folder}, is gone: pass --data-dir with the data's new place"
        )
    if log:
        log(f"the folder this checkpoint was trained from, {folder}, is gone: using the {dataset} cache instead")
    return None


def execute(config: dict, out: Path, hooks: training.Hooks, resume: Resumable | None = None) -> Outcome:
    """Load the data, train (or go on training), evaluate on the test set and save."""
    options.check_combination(config)  # before any work: what no single option can say
    log = hooks.log or (lambda line: None)
    source = config.get("source", "mirrors")  # checkpoints from before --source have no such key
    data = datasets.load(config["dataset"], config["data_dir"], config["mirror"], source=source)
    run = training.prepare_run(data.train.images, data.train.labels, config["model"], config["hidden"],
                               config["val_split"], config["seed"], config.get("activation"))  # fmt: skip
    if resume is not None:
        run.model = resume.model  # the split and normalisation are redrawn from the seed; the weights are saved
    n_val = len(run.validation[1]) if run.validation else 0
    log(f"{data.name}: {len(run.labels)} training, {n_val} validation, {len(data.test.labels)} test images")
    # The run's id, in its checkpoint and its metrics file's first record: checkpoint.settle pairs them.
    first = next((r for r in resume.records if r.get("type") == "init"), {}) if resume else {}
    meta = {
        "run": first.get("run") or uuid.uuid4().hex,
        "dataset": data.name,
        "class_names": list(data.class_names),
        "normalization": {"mean": run.norm.mean, "std": run.norm.std},
        "config": config,
    }

    settings = settings_of(config)
    kept = _snapshots(config, run, resume, log)
    hooks.snapshot = kept.take if kept is not None else None
    if settings.probe_every != 0:
        chosen = probes.choose(data.test.labels, config["seed"])
        hooks.observe = probes.Probe(run.model, data.test.images[chosen], data.test.labels[chosen], run.norm,
                                     settings.loss)  # fmt: skip

    metrics = checkpoint.MetricsFile(checkpoint.metrics_path(out))
    hooks.on_record = metrics.write
    try:
        for record in resume.records if resume else []:
            hooks.emit(record)
        if resume is None:
            _begin(run, data, settings, config, meta, hooks, log)
        try:
            epochs = training.train(
                run.model, run.images, run.labels, run.norm, settings, run.rng, run.validation, hooks,
                resume=resume.state if resume else None,
            )  # fmt: skip
        except training.TrainStateError as exc:  # the loop checks the state before its first step
            raise checkpoint.CheckpointError(f"{resume.path}: {exc}") from None
        except training.Interrupted as exc:
            saved = checkpoint.interrupted_path(out)
            stopped = {**meta, "out": str(out), "records": hooks.records, "resume": exc.state.to_meta()}
            checkpoint.save(saved, run.model, stopped, optimizer_state=exc.state.optimizer_state, snapshots=kept)
            metrics.commit(checkpoint.metrics_path(saved))
            raise Stopped(exc, saved) from None
        # The test set's logits, once: its scores and its reliability diagram both come from them.
        test_logits = inference.logits(run.model, data.test.images, run.norm).astype(np.float64)
        test = inference.score(test_logits, data.test.labels, loss=settings.loss)
        hooks.emit({"type": "test", **test.as_dict()})
        initial_loss = next(r["loss"] for r in hooks.records if r["type"] == "init")
        meta["metrics"] = {
            "initial_loss": initial_loss,
            "final_epoch": epochs[-1],
            "test_loss": test.loss,
            "test_accuracy": test.accuracy,
        }
        if run.validation is not None:  # temperature scaling, fitted on the held-out split
            meta["temperature"] = _temperature(run)
            log(
                f"temperature fitted on the validation split: T = {meta['temperature']:.4f}"
                + temperature_note(meta["temperature"], settings.label_smoothing)
            )
        meta["reliability"] = _reliability(test_logits, data.test.labels, meta.get("temperature"))
        checkpoint.save(out, run.model, meta, snapshots=kept)
        metrics.commit()
    except BaseException:
        metrics.discard()  # after commit() this does nothing
        raise
    if resume is not None and resume.path == checkpoint.interrupted_path(out):
        resume.path.unlink(missing_ok=True)  # used up: the finished checkpoint replaces it
        checkpoint.metrics_path(resume.path).unlink(missing_ok=True)
    return Outcome(out, test)


# Without a validation split, the loss before training is measured on the first training images:
# at an untrained net the images' losses spread by about 0.08 (standard deviation) around ln 10, so
# 2,000 of them give their mean to +-0.002 (MNIST, mlp 256, seed 10: 2.2988 against 2.2974 on
# 10,000) in a fifth of the time (25 -> 5 ms).
INITIAL_SAMPLE = 2000


def _begin(run: training.Run, data, settings: training.TrainSettings, config: dict, meta: dict,
           hooks: training.Hooks, log) -> None:  # fmt: skip
    """A new run's first record: the loss before training (near ln 10), said in the log, with
    what a reader of the metrics file while the run goes on needs to draw it."""
    held_out = run.validation or (run.images[:INITIAL_SAMPLE], run.labels[:INITIAL_SAMPLE])
    initial = inference.evaluate(run.model, *held_out, run.norm, loss=settings.loss)
    log(f"loss before training: {initial.loss:.4f}  (ln 10 = {math.log(10):.4f}: every class near 10 %)")
    if settings.label_smoothing:
        log(smoothing_note(settings.label_smoothing, len(data.class_names)))
    steps = training.steps_per_epoch(len(run.labels), config["batch_size"])
    hooks.emit({"type": "init", "run": meta["run"], "loss": initial.loss, "accuracy": initial.accuracy,
                "dataset": data.name, "class_names": list(data.class_names), "config": config,
                "steps_per_epoch": steps})  # fmt: skip


def smoothing_note(smoothing: float, classes: int) -> str:
    """One sentence for the log of a run with label smoothing: what its training loss measures and
    where it stops (the entropy of the smoothed target, the least cross entropy against it)."""
    on_label, elsewhere = 1 - smoothing + smoothing / classes, smoothing / classes
    floor = -on_label * math.log(on_label) - (classes - 1) * elsewhere * math.log(elsewhere)
    return (f"label smoothing e = {smoothing:g}: training asks for p = {on_label:.3g} on the label rather than 1, "
            f"so the training loss stops near {floor:.2f} instead of falling to 0, and the net ends less sure; "
            "the validation and test losses are plain cross entropy")  # fmt: skip


def temperature_note(temperature: float, smoothing: float) -> str:
    """What a fitted T says, in a few words: T < 1 sharpens an under-confident net's probabilities."""
    if temperature < 0.9:
        why = ", as label smoothing makes it" if smoothing else ""
        return f"  (below 1: the net is less sure than it is right{why}; softmax(z / T) sharpens it)"
    if temperature > 1.1:
        return "  (above 1: the net is surer than it is right; softmax(z / T) softens it)"
    return "  (near 1: its probabilities already match how often it is right)"


def _snapshots(config: dict, run: training.Run, resume: Resumable | None, log) -> snapshots.Snapshots | None:
    """The run's snapshots: none when asked for none; a resumed run's go on from those it had
    (checked against the schedule), and one interrupted before snapshots existed keeps none."""
    count = snapshots.count_for(config.get("snapshots"), run.model)
    total = config["epochs"] * training.steps_per_epoch(len(run.labels), config["batch_size"])
    planned = snapshots.schedule(total, count)
    if not planned:
        return None
    if resume is None:
        return snapshots.Snapshots(planned)
    if resume.snapshots is None:
        log("this run was stopped by a version that kept no snapshots: its checkpoint will have none")
        return None
    try:
        return snapshots.Snapshots(planned, resume.snapshots.steps, resume.snapshots.arrays)
    except snapshots.SnapshotError as exc:
        raise checkpoint.CheckpointError(f"{resume.path}: {exc}") from None


def _reliability(Z: np.ndarray, labels: np.ndarray, temperature: float | None) -> dict:
    """The test set's reliability diagram from its logits Z (N, C), for the page
    (calibration.reliability_record)."""
    from mnistsoftmax.calibration import reliability_record

    return reliability_record(Z, labels.astype(np.intp), temperature)


def _temperature(run: training.Run) -> float:
    """The T minimising the validation split's NLL of softmax(z / T) (calibration.py)."""
    from mnistsoftmax.calibration import fit_temperature

    images, labels = run.validation
    return fit_temperature(inference.logits(run.model, images, run.norm).astype(np.float64), labels.astype(np.intp))
