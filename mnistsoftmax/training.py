"""The training loop. No printing and no click: progress and log lines go through the callables
the caller passes in (Hooks), and so do the observations of a run as it goes (probes.py).

Pixels stay uint8 in memory (47 MB for MNIST's training set instead of 188 MB as float32); each
minibatch is gathered into a reused buffer and normalised there, x = (pixel/255 - mean) / std.
The loss is picked by name from losses.LOSSES; its fused form turns the logits into their gradient
in place.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, make_dataclass

import numpy as np

from mnistsoftmax import optim
from mnistsoftmax.augment import Distorter
from mnistsoftmax.errors import MnistSoftmaxError, quoted
from mnistsoftmax.functional import dropout_mask
from mnistsoftmax.inference import Normalization, evaluate, flat
from mnistsoftmax.losses import get as get_loss
from mnistsoftmax.models import build, check_dropout
from mnistsoftmax.optim import learning_rate
from mnistsoftmax.options import PROBES_PER_EPOCH, TRAIN_OPTIONS, default_of


class DivergenceError(MnistSoftmaxError):
    """The loss became NaN or infinite."""


class _Settings:
    @classmethod
    def of(cls, values: dict, **given) -> TrainSettings:
        """The settings from a run's option values (absent or None: the option's default), and `given`."""
        names = {f.name for f in fields(cls)} - set(given)
        return cls(**{k: values[k] for k in names if values.get(k) is not None}, **given)

    @property
    def per_batch_randomness(self) -> bool:
        return bool(self.dropout) or (self.distortion is not None and self.distortion.active)


def _option_field(name: str):
    return field(default_factory=lambda: default_of(name))


# What the loop reads of a run: every training option (options.TRAIN_OPTIONS, with its default), and
# `distortion`, the augment.Distortion those options describe (None: none). probe_every is the steps
# between Hooks.observe calls (None: about PROBES_PER_EPOCH an epoch; 0: none).
TrainSettings = make_dataclass(
    "TrainSettings",
    [(o.name, object, _option_field(o.name)) for o in TRAIN_OPTIONS] + [("distortion", object, None)],
    bases=(_Settings,),
    frozen=True,
)


def optimizer_of(settings: TrainSettings, model) -> optim.Optimizer:
    """The run's optimizer over the model's parameters (weight decay on its weights)."""
    return optim.build(settings.optimizer, model.params, settings.momentum, settings.weight_decay, model.weight_names,
                       settings.nesterov)  # fmt: skip


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Minibatches in an epoch of n samples (the last one may be smaller)."""
    return math.ceil(n / min(batch_size, n))


def default_observe_every(steps_per_epoch: int) -> int:
    """Steps between observations giving about PROBES_PER_EPOCH per epoch."""
    return max(1, round(steps_per_epoch / PROBES_PER_EPOCH))


def batch_generator(epoch_key: int, batch: int) -> np.random.Generator:
    """The generator of one batch's distortions and dropout mask, from the key its epoch drew.

    Its own per batch, so that a resumed epoch, which skips the batches done before the
    interruption, draws for each batch what the uninterrupted run drew.
    """
    return np.random.default_rng([epoch_key, batch])


def split_validation(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of a random held-out slice of `fraction` of n samples."""
    order = rng.permutation(n)
    n_val = int(round(n * fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@dataclass
class Run:
    """What a training run starts from; see prepare_run."""

    model: object
    images: np.ndarray  # (N, 28, 28) uint8, the training part
    labels: np.ndarray  # (N,)
    validation: tuple[np.ndarray, np.ndarray] | None
    norm: Normalization
    rng: np.random.Generator  # continues with the per-epoch shuffles


def prepare_run(images: np.ndarray, labels: np.ndarray, kind: str, hidden, val_split: float, seed: int,
                activation: str | None = None) -> Run:  # fmt: skip
    """Everything random about a run, drawn in a fixed order from one generator seeded by `seed`:
    the initial weights, then the validation split; the same generator then shuffles each epoch.
    The PyTorch reference relies on this order to reproduce a run exactly."""
    rng = np.random.default_rng(seed)
    model = build(kind, rng, hidden, activation=activation)
    train_idx, val_idx = split_validation(len(labels), val_split, rng)
    if len(train_idx) == 0:
        raise MnistSoftmaxError(
            f"a validation split of {val_split} leaves none of the {len(labels)} samples to train on"
        )
    validation = (images[val_idx], labels[val_idx]) if len(val_idx) else None
    # Without a split every image trains, in its own order (train_idx is 0 .. n - 1): no copy.
    train_images, train_labels = (images[train_idx], labels[train_idx]) if len(val_idx) else (images, labels)
    return Run(model, train_images, train_labels, validation, Normalization.of(train_images), rng)


@dataclass
class Hooks:
    """What the loop reports, and to whom; every hook is optional."""

    # progress(total=..., desc=...) -> an object with update(n), set_postfix_str(s), close(), or None
    progress: Callable | None = None
    on_record: Callable[[dict], None] | None = None  # each metrics record as it is made
    log: Callable[[str], None] | None = None  # one line of human-readable progress
    should_stop: Callable[[], bool] | None = None  # asked before every batch (Ctrl-C, SIGTERM)
    # observe(model, step, epoch, moment) -> records, at the moments "start" (before the first
    # step), "step" (every settings.probe_every steps and after the last) and "epoch" (each
    # epoch's end). It must only read the parameters: the weights are the same with it or without.
    observe: Callable[..., list[dict]] | None = None
    # snapshot(model, step) before the first step and after every step (snapshots.Snapshots.take
    # keeps the scheduled ones); it too must only read the parameters.
    snapshot: Callable[..., None] | None = None
    records: list = field(default_factory=list)  # every record so far (init, steps, epochs)

    def emit(self, record: dict) -> None:
        self.records.append(record)
        if self.on_record:
            self.on_record(record)


@dataclass
class TrainState:
    """Where a run stands at a batch boundary: enough, with the parameters, to go on bit for bit.

    The generator's state is the one from the start of the current epoch: resuming draws that
    epoch's permutation again and skips the batches already done.
    """

    epoch: int  # 1-based, the epoch in progress
    batch: int  # the next batch of that epoch
    step: int  # batches done in all
    rng_state: dict  # np.random.Generator.bit_generator.state at the start of `epoch`
    loss_sum: float  # of the epoch so far
    correct: int  # of the epoch so far
    window: float  # sum of the losses since the last step record
    optimizer_state: dict[str, np.ndarray]  # the optimizer's state_dict()
    seconds: float = 0.0  # spent on the epoch so far (absent from checkpoints of version 0.1.0)

    def to_meta(self) -> dict:
        """The JSON part (the optimizer's arrays are stored beside it)."""
        keys = ("epoch", "batch", "step", "rng_state", "loss_sum", "correct", "window", "seconds")
        return {k: getattr(self, k) for k in keys}

    @classmethod
    def from_meta(cls, meta: dict, optimizer_state: dict[str, np.ndarray]) -> TrainState:
        """The state saved by to_meta, its types and signs checked (TrainStateError says which key);
        check_against then checks it against the run it resumes."""
        if not isinstance(meta, dict):
            raise TrainStateError("the saved training state is not an object")
        keys = {"epoch", "batch", "step", "rng_state", "loss_sum", "correct", "window"}
        if not keys <= set(meta) or not set(meta) <= keys | {"seconds"}:
            wrong = sorted(keys - set(meta)) or sorted(set(meta) - keys - {"seconds"})
            raise TrainStateError(f"the saved training state is incomplete or foreign ({quoted(wrong[0])})")
        for key in ("epoch", "batch", "step", "correct"):
            value = meta[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_STATE_COUNT:
                raise TrainStateError(f"the saved training state's {key} is {quoted(value)}, not a count")
        for key in ("loss_sum", "window", "seconds"):
            value = meta.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
                raise TrainStateError(f"the saved training state's {key} is {quoted(value)}, not a finite sum >= 0")
        if not isinstance(meta["rng_state"], dict):
            raise TrainStateError("the saved training state's rng_state is not a generator's state")
        return cls(**meta, optimizer_state=optimizer_state)

    def check_against(self, epochs: int, steps_per_epoch: int, batch_size: int) -> None:
        """The state is a point of this run's own schedule: an epoch of it, a batch of that epoch,
        the step those make, no more right answers than samples seen, and an optimizer that has
        counted the same steps. TrainStateError otherwise, before any training."""
        if not 1 <= self.epoch <= epochs or not 0 <= self.batch < steps_per_epoch:
            raise TrainStateError(f"the saved training state stands at epoch {self.epoch}, batch {self.batch}: this "
                                  f"run has {epochs} epochs of {steps_per_epoch} batches")  # fmt: skip
        expected = (self.epoch - 1) * steps_per_epoch + self.batch
        if self.step != expected:
            raise TrainStateError(f"the saved training state says step {self.step} at epoch {self.epoch}, batch "
                                  f"{self.batch}, which is step {expected} of this run")  # fmt: skip
        if self.correct > self.batch * batch_size:
            raise TrainStateError(f"the saved training state counts {self.correct} right answers in {self.batch} "
                                  f"batches of {batch_size}")  # fmt: skip
        counted = self.optimizer_state.get("steps")
        if counted is not None and int(np.asarray(counted)) != self.step:
            raise TrainStateError(f"the saved optimizer counted {int(np.asarray(counted))} steps where the run took "
                                  f"{self.step}")  # fmt: skip


MAX_STATE_COUNT = 10**12  # a count no run reaches: anything larger is not a saved state


class TrainStateError(MnistSoftmaxError):
    """A saved training state that is not a point of the run it claims to resume."""


class Interrupted(MnistSoftmaxError):
    """Training stopped at a batch boundary on request; `state` says where."""

    def __init__(self, state: TrainState):
        super().__init__(f"interrupted at epoch {state.epoch}, step {state.step}")
        self.state = state


class _NullBar:
    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass


def train(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    norm: Normalization | None,
    settings: TrainSettings,
    rng: np.random.Generator,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    hooks: Hooks | None = None,
    resume: TrainState | None = None,
) -> list[dict]:
    """Minibatch SGD over (images (N, 28, 28) uint8, labels (N,)); reshuffled every epoch from rng.
    With `norm` None, `images` are features (N, D) that already are the model's inputs.

    Returns the per-epoch records of this call. Raises DivergenceError when the loss stops being
    finite (the parameters are then not to be trusted), and Interrupted when hooks.should_stop()
    says so before a batch. `resume` continues from an Interrupted's state: the parameters must
    be the ones it had, and the result is bit-identical to a run that was never interrupted.

    With hooks.observe and settings.probe_every not 0, its records are emitted before the first
    step, after every probe_every-th step and after the last one (see Hooks).
    """
    return _Loop(model, flat(images), labels, norm, settings, hooks or Hooks()).run(rng, validation, resume)


class _Loop:
    """One call of train(): everything the hot loop touches is allocated here, once."""

    def __init__(self, model, pixels: np.ndarray, labels: np.ndarray, norm, settings: TrainSettings, hooks: Hooks):
        self.model, self.norm, self.settings, self.hooks = model, norm, settings, hooks
        self.n = len(pixels)
        bs = min(settings.batch_size, self.n)
        self.epoch_steps = steps_per_epoch(self.n, bs)
        self.total_steps = settings.epochs * self.epoch_steps
        self.ws = model.workspace(bs)
        self.rows = np.arange(bs)
        check_dropout(settings.dropout, model.hidden_widths)
        self.optimizer = optimizer_of(settings, model)
        self.loss = get_loss(settings.loss).inplace
        self.batches = _Batches(settings, bs, model, pixels, labels.astype(np.intp), norm)
        every = settings.probe_every
        every = default_observe_every(self.epoch_steps) if every is None else every
        self.observe_every = every if hooks.observe is not None else 0
        self.step, self.window = 0, 0.0

    def _observe(self, epoch: int, moment: str) -> None:
        for record in self.hooks.observe(self.model, self.step, epoch, moment):
            self.hooks.emit(record)

    def run(self, rng: np.random.Generator, validation, resume: TrainState | None) -> list[dict]:
        first_epoch = 1
        if resume is not None:
            resume.check_against(self.settings.epochs, self.epoch_steps, self.settings.batch_size)
            self.optimizer.load_state_dict(resume.optimizer_state)
            rng.bit_generator.state = resume.rng_state
            first_epoch, self.step, self.window = resume.epoch, resume.step, resume.window
        else:
            if self.hooks.snapshot:
                self.hooks.snapshot(self.model, 0)
            if self.observe_every:
                self._observe(1, "start")
        epochs = []
        # Overflow on the way to divergence is expected: it is caught as a non-finite loss.
        with np.errstate(over="ignore", invalid="ignore"):
            for epoch in range(first_epoch, self.settings.epochs + 1):
                within = resume if resume is not None and epoch == first_epoch else None
                record = self._epoch(epoch, rng, within)
                if validation is not None and len(validation[1]):
                    val = evaluate(self.model, validation[0], validation[1], self.norm, loss=self.settings.loss)
                    record.update(val_loss=val.loss, val_accuracy=val.accuracy)
                record["seconds"] = time.perf_counter() - record.pop("started")
                self.hooks.emit(record)
                if self.observe_every:
                    self._observe(epoch, "epoch")
                if self.hooks.log:
                    self.hooks.log(format_epoch(record, self.settings.epochs, self.settings.label_smoothing))
                epochs.append(record)
        return epochs

    def _epoch(self, epoch: int, rng: np.random.Generator, resume: TrainState | None) -> dict:
        """One pass (or the rest of an interrupted one) -> its record, with `started` for the time."""
        s, hooks = self.settings, self.hooks
        # A resumed epoch's record counts the seconds spent on it before the interruption too.
        started = time.perf_counter() - (resume.seconds if resume else 0.0)
        epoch_rng_state = rng.bit_generator.state
        order = rng.permutation(self.n)
        # Only runs with distortions or dropout draw the key: the others stay bit for bit as before.
        epoch_key = int(rng.integers(2**63)) if s.per_batch_randomness else None
        start = resume.batch if resume else 0
        loss_sum, correct = (resume.loss_sum, resume.correct) if resume else (0.0, 0)
        desc = f"epoch {epoch}/{s.epochs}"
        bar = hooks.progress(total=self.epoch_steps, desc=desc, initial=start) if hooks.progress else None
        bar = _NullBar() if bar is None else bar  # (a bar's truth is its length: not asked)
        try:
            for i in range(start, self.epoch_steps):
                if hooks.should_stop and hooks.should_stop():
                    raise Interrupted(
                        TrainState(epoch, i, self.step, epoch_rng_state, loss_sum, correct, self.window,
                                   self.optimizer.state_dict(), seconds=time.perf_counter() - started)
                    )  # fmt: skip
                loss, right, m = self._step(*self.batches.batch(order, epoch_key, i), epoch)
                correct += right
                loss_sum += loss * m
                self._record_step(loss, epoch, bar)
                if hooks.snapshot:
                    hooks.snapshot(self.model, self.step)
                bar.update(1)
        finally:
            bar.close()
        return {
            "type": "epoch",
            "epoch": epoch,
            "step": self.step,
            "train_loss": loss_sum / self.n,
            "train_accuracy": correct / self.n,
            "lr": learning_rate(s.schedule, s.lr, self.step - 1, self.total_steps),
            "started": started,
        }

    def _step(self, x: np.ndarray, y: np.ndarray, masks, epoch: int) -> tuple[float, int, int]:
        """One optimizer step on a batch -> (its mean loss, how many it got right, its size)."""
        s = self.settings
        Z, cache = self.model.forward(x, self.ws, dropout=masks)
        loss, right = self.loss(Z, y, self.rows[: len(y)], s.label_smoothing)  # Z now holds dLoss/dZ
        if not math.isfinite(loss):
            raise DivergenceError(
                f"the loss became {loss} at epoch {epoch}, step {self.step + 1}: training diverged; "
                f"try a lower learning rate than --lr {s.lr}"
            )
        # The gradient lands where the optimizer reads it (plain SGD: its velocity, v <- momentum * v + g).
        self.model.backward(Z, cache, self.optimizer.gradients, self.ws, beta=self.optimizer.beta)
        self.optimizer.step(learning_rate(s.schedule, s.lr, self.step, self.total_steps))
        self.step += 1
        return loss, right, len(y)

    def _record_step(self, loss: float, epoch: int, bar) -> None:
        every, step = self.settings.log_every, self.step
        self.window += loss
        if step <= every:
            # The first fall from ln 10 happens within a few dozen steps: record each of them, or
            # the curve jumps from the loss before training to the first window. Each record covers
            # only its own steps (the windows tile the run), so the first window's mean holds none
            # of the first steps' high losses.
            self.hooks.emit({"type": "step", "step": step, "epoch": epoch, "loss": loss, "steps": 1})
            self.window = 0.0
        elif step % every == 0:
            mean = self.window / every
            self.hooks.emit({"type": "step", "step": step, "epoch": epoch, "loss": mean, "steps": every})
            bar.set_postfix_str(f"loss {mean:.4f}")
            self.window = 0.0
        if self.observe_every and (step % self.observe_every == 0 or step == self.total_steps):
            self._observe(epoch, "step")


class _Batches:
    """The loop's minibatches, gathered into buffers allocated once: pixels (N, D) are gathered by
    index, distorted if the run distorts, normalised into the model's dtype, and given a dropout
    mask if the run drops out. With `norm` None the features already are the model's inputs (the
    scikit-learn estimator's, scaled by the user) and are gathered straight into the input buffer.

    Batch i of an epoch draws from batch_generator(epoch_key, i): its distortions (in augment.py's
    order), then its dropout mask. All of it runs in the main thread: a worker thread preparing
    the next batch during this one's matrix products was measured slower (mlp H=800, batch 128:
    1.85-3.26 s an epoch against 1.88-2.68 s), since OpenBLAS already keeps both cores busy.
    """

    def __init__(self, settings: TrainSettings, bs: int, model, pixels, labels, norm: Normalization | None):
        self.bs, self.pixels, self.labels, self.norm, self.p = bs, pixels, labels, norm, settings.dropout
        D, self.dtype = pixels.shape[1], next(iter(model.params.values())).dtype
        d = settings.distortion
        self.distorter = Distorter(d, bs) if d is not None and d.active else None
        self.x = np.empty((bs, D), self.dtype)
        self.y = np.empty(bs, np.intp)
        self.gathered = np.empty((bs, D), pixels.dtype) if norm is not None or self.distorter else None
        self.distorted = np.empty((bs, D), np.float32) if self.distorter else None
        if self.p:  # one mask per hidden layer, and scratch for each
            widths = model.hidden_widths
            self.masks = [np.empty((bs, H), self.dtype) for H in widths]
            self.keep = [np.empty((bs, H), np.bool_) for H in widths]

    def batch(self, order: np.ndarray, epoch_key: int | None, i: int):
        """Batch i's (x (m, D), y (m,), dropout masks [(m, H_l)] or None)."""
        idx = order[i * self.bs : (i + 1) * self.bs]
        m = len(idx)
        rng = batch_generator(epoch_key, i) if epoch_key is not None else None
        if self.gathered is None:
            x = np.take(self.pixels, idx, axis=0, out=self.x[:m])
        else:
            pixels = np.take(self.pixels, idx, axis=0, out=self.gathered[:m])
            if self.distorter:
                pixels = self.distorter(pixels, rng, self.distorted)
            if self.norm is None:
                x = self.x[:m]
                np.copyto(x, pixels)
            else:
                x = self.norm.apply(pixels, out=self.x[:m], dtype=self.dtype)
        y = np.take(self.labels, idx, out=self.y[:m])
        if not self.p:
            return x, y, None
        return (
            x,
            y,
            [dropout_mask(rng, self.p, mask[:m], keep[:m]) for mask, keep in zip(self.masks, self.keep, strict=True)],
        )


def format_epoch(record: dict, epochs: int, smoothing: float = 0.0) -> str:
    """One epoch's line; a run with label smoothing says its training loss is the smoothed one."""
    which = f"train loss (smoothed, e = {smoothing:g})" if smoothing else "train loss"
    line = (
        f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs}  "
        f"{which} {record['train_loss']:.4f} acc {100 * record['train_accuracy']:.2f}%"
    )
    if "val_loss" in record:
        line += f"  val loss {record['val_loss']:.4f} acc {100 * record['val_accuracy']:.2f}%"
    return line + f"  {record['seconds']:.1f}s"
