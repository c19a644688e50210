"""The training loop, evaluation and metrics. No printing and no click: progress and log lines go
through the callables the caller passes in.

Pixels stay uint8 in memory (47 MB for MNIST's training set instead of 188 MB as float32); each
minibatch is gathered into a reused buffer and normalised there, x = (pixel/255 - mean) / std.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mnistsoftmax import MnistSoftmaxError, probes
from mnistsoftmax.augment import Distorter, Distortion
from mnistsoftmax.functional import dropout_mask, inplace_softmax_cross_entropy, log_softmax
from mnistsoftmax.optim import SGD, learning_rate

EVAL_BATCH = 4096  # large: evaluation has no backward pass, and fewer, bigger matmuls are faster


class DivergenceError(MnistSoftmaxError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class Normalization:
    """Input scaling, stored in checkpoints: x = (pixel / 255 - mean) / std."""

    mean: float
    std: float

    @classmethod
    def of(cls, images: np.ndarray) -> Normalization:
        """Mean and standard deviation of pixel/255 over uint8 images, exactly.

        From the histogram of the 256 pixel values: no float copy of the images (338 MB in
        float64 for MNIST), and no rounding in the sums.
        """
        pixels = images.reshape(-1)
        counts = np.zeros(256)
        for start in range(0, len(pixels), 1 << 22):  # bincount casts to int64: 32 MB at a time
            counts += np.bincount(pixels[start : start + (1 << 22)], minlength=256)
        values = np.arange(256) / 255.0
        mean = float(counts @ values / counts.sum())
        std = float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum()))
        return cls(mean, std if std > 0 else 1.0)

    def apply(self, pixels: np.ndarray, out: np.ndarray | None = None, dtype=np.float32) -> np.ndarray:
        """uint8 pixels (N, D) -> normalised inputs (N, D); written into `out` when given."""
        scale = np.asarray(1.0 / (255.0 * self.std), dtype=dtype)
        shift = np.asarray(-self.mean / self.std, dtype=dtype)
        x = out if out is not None else np.empty(pixels.shape, dtype)
        np.copyto(x, pixels)  # exact; then scale in place: 20 % quicker than one mixed uint8 * float pass
        x *= scale
        x += shift
        return x


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"
    log_every: int = 50  # steps between loss records in the metrics file (each of the first ones is recorded)
    distortion: Distortion | None = None  # random distortions of each training batch (augment.py)
    dropout: float = 0.0  # probability of dropping each hidden unit in training (mlp only)
    label_smoothing: float = 0.0  # e: targets (1 - e) onehot + e / C (functional.cross_entropy)
    probe_every: int | None = 0  # steps between probes (probes.py); None: about 20 per epoch; 0: none

    @property
    def per_batch_randomness(self) -> bool:
        return bool(self.dropout) or (self.distortion is not None and self.distortion.active)


def check_dropout(p: float, kind: str) -> None:
    if p and kind != "mlp":
        raise MnistSoftmaxError(f"--dropout {p} applies to the hidden layer: it needs --model mlp")


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Minibatches in an epoch of n samples (the last one may be smaller)."""
    return math.ceil(n / min(batch_size, n))


def batch_generator(epoch_key: int, batch: int) -> np.random.Generator:
    """The generator of one batch's distortions and dropout mask, from the key its epoch drew.

    Its own per batch, so that a resumed epoch, which skips the batches done before the
    interruption, draws for each batch what the uninterrupted run drew.
    """
    return np.random.default_rng([epoch_key, batch])


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    confusion: np.ndarray  # (C, C) int64: rows true class, columns predicted class

    @property
    def per_class(self) -> np.ndarray:
        """Accuracy of each true class (C,); NaN for a class with no samples."""
        totals = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.confusion) / totals

    def as_dict(self) -> dict:
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "per_class": [None if math.isnan(a) else float(a) for a in self.per_class],
            "confusion": self.confusion.tolist(),
        }


def flat(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) -> (N, 784) view."""
    return images.reshape(len(images), -1)


def logits(model, images: np.ndarray, norm: Normalization, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Logits (N, C) of uint8 images (N, 28, 28) or (N, 784), in large batches."""
    pixels = flat(images)
    dtype = next(iter(model.params.values())).dtype
    out = np.empty((len(pixels), model.sizes["classes"]), dtype=dtype)
    capacity = min(batch_size, max(len(pixels), 1))
    ws = model.workspace(capacity)
    xbuf = np.empty((capacity, pixels.shape[1]), dtype=dtype)
    for start in range(0, len(pixels), batch_size):
        chunk = pixels[start : start + batch_size]
        x = norm.apply(chunk, out=xbuf[: len(chunk)], dtype=dtype)
        out[start : start + len(chunk)], _ = model.forward(x, ws)
    return out


def evaluate(model, images: np.ndarray, labels: np.ndarray, norm: Normalization, num_classes: int = 10) -> Evaluation:
    """Mean cross entropy, accuracy and confusion matrix on a labelled set."""
    Z = logits(model, images, norm).astype(np.float64)
    y = labels.astype(np.intp)
    loss = float(-log_softmax(Z)[np.arange(len(y)), y].mean())
    predicted = Z.argmax(axis=1)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (y, predicted), 1)
    return Evaluation(loss, float((predicted == y).mean()), confusion)


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


def prepare_run(images: np.ndarray, labels: np.ndarray, kind: str, hidden: int, val_split: float, seed: int) -> Run:
    """Everything random about a run, drawn in a fixed order from one generator seeded by `seed`:
    the initial weights, then the validation split; the same generator then shuffles each epoch.
    The PyTorch reference relies on this order to reproduce a run exactly."""
    rng = np.random.default_rng(seed)
    model = _initial_model(kind, hidden, rng)
    train_idx, val_idx = split_validation(len(labels), val_split, rng)
    if len(train_idx) == 0:
        raise MnistSoftmaxError(
            f"a validation split of {val_split} leaves none of the {len(labels)} samples to train on"
        )
    validation = (images[val_idx], labels[val_idx]) if len(val_idx) else None
    train_images = images[train_idx]
    return Run(model, train_images, labels[train_idx], validation, Normalization.of(train_images), rng)


def _initial_model(kind: str, hidden: int, rng: np.random.Generator):
    from mnistsoftmax.models import build_model

    return build_model(kind, rng, hidden)


def untrained_model(kind: str, hidden: int, seed: int):
    """The model a run with this seed started from (its initial weights are the first draw)."""
    return _initial_model(kind, hidden, np.random.default_rng(seed))


@dataclass
class Hooks:
    """What the loop reports, and to whom; every hook is optional."""

    # progress(total=..., desc=...) -> an object with update(n), set_postfix_str(s), close()
    progress: Callable | None = None
    on_record: Callable[[dict], None] | None = None  # each metrics record as it is made
    log: Callable[[str], None] | None = None  # one line of human-readable progress
    should_stop: Callable[[], bool] | None = None  # asked before every batch (Ctrl-C, SIGTERM)
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
    velocity: dict[str, np.ndarray]  # the optimiser's momentum buffers
    seconds: float = 0.0  # spent on the epoch so far (absent from checkpoints of version 0.1.0)

    def to_meta(self) -> dict:
        """The JSON part (the velocity arrays are stored beside it)."""
        keys = ("epoch", "batch", "step", "rng_state", "loss_sum", "correct", "window", "seconds")
        return {k: getattr(self, k) for k in keys}

    @classmethod
    def from_meta(cls, meta: dict, velocity: dict[str, np.ndarray]) -> TrainState:
        return cls(**meta, velocity=velocity)


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
    probe: probes.Probe | None = None,
) -> list[dict]:
    """Minibatch SGD over (images (N, 28, 28) uint8, labels (N,)); reshuffled every epoch from rng.
    With `norm` None, `images` are features (N, D) that already are the model's inputs.

    Returns the per-epoch records of this call. Raises DivergenceError when the loss stops being
    finite (the parameters are then not to be trusted), and Interrupted when hooks.should_stop()
    says so before a batch. `resume` continues from an Interrupted's state: the parameters must
    be the ones it had, and the result is bit-identical to a run that was never interrupted.

    With a `probe` (probes.Probe) and settings.probe_every not 0, a probe record is emitted before
    the first step, after every probe_every-th step and after the last one, and a weights record
    before the first step and after each epoch. Probes only read the parameters: the weights are
    the same with them or without.
    """
    hooks = hooks or Hooks()
    pixels = flat(images)
    n = len(pixels)
    bs = min(settings.batch_size, n)
    epoch_steps = steps_per_epoch(n, bs)
    total_steps = settings.epochs * epoch_steps

    # Everything the hot loop touches is allocated here, once.
    ws = model.workspace(bs)
    rows = np.arange(bs)
    optimizer = SGD(model.params, settings.momentum, settings.weight_decay, model.weight_names)
    check_dropout(settings.dropout, model.kind)
    batches = _Batches(settings, bs, model, pixels, labels.astype(np.intp), norm)
    probe_every = settings.probe_every
    if probe_every is None:
        probe_every = probes.default_every(epoch_steps)
    if probe is None or not probe_every:
        probe_every = 0

    if resume is not None:
        for name, v in resume.velocity.items():
            optimizer.velocity[name][...] = v
        rng.bit_generator.state = resume.rng_state
        first_epoch, first_batch, step, window = resume.epoch, resume.batch, resume.step, resume.window
    else:
        first_epoch, first_batch, step, window = 1, 0, 0, 0.0
        if probe_every:
            _look(hooks, probe, model, step, 1, weights=True)

    epochs = []
    # Overflow on the way to divergence is expected: it is caught as a non-finite loss.
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(first_epoch, settings.epochs + 1):
            resuming = resume is not None and epoch == first_epoch
            # A resumed epoch's record counts the seconds spent on it before the interruption too.
            started = time.perf_counter() - (resume.seconds if resuming else 0.0)
            epoch_rng_state = rng.bit_generator.state
            order = rng.permutation(n)
            # Only runs with distortions or dropout draw the key: the others stay bit for bit as before.
            epoch_key = int(rng.integers(2**63)) if settings.per_batch_randomness else None
            start = first_batch if resuming else 0
            loss_sum, correct = (resume.loss_sum, resume.correct) if resuming else (0.0, 0)
            desc = f"epoch {epoch}/{settings.epochs}"
            bar = hooks.progress(total=epoch_steps, desc=desc, initial=start) if hooks.progress else _NullBar()
            try:
                for i in range(start, epoch_steps):
                    if hooks.should_stop and hooks.should_stop():
                        raise Interrupted(
                            TrainState(epoch, i, step, epoch_rng_state, loss_sum, correct, window, optimizer.velocity,
                                       seconds=time.perf_counter() - started)
                        )  # fmt: skip
                    x, y, mask = batches.batch(order, epoch_key, i)
                    m = len(y)
                    Z, cache = model.forward(x, ws, dropout=mask)
                    # Z now holds dLoss/dZ
                    loss, right = inplace_softmax_cross_entropy(Z, y, rows[:m], settings.label_smoothing)
                    correct += right
                    if not math.isfinite(loss):
                        raise DivergenceError(
                            f"the loss became {loss} at epoch {epoch}, step {step + 1}: training diverged; "
                            f"try a lower learning rate than --lr {settings.lr}"
                        )
                    # The gradient lands in the velocity: v <- momentum * v + g (see optim.SGD).
                    model.backward(Z, cache, optimizer.velocity, ws, beta=optimizer.momentum)
                    optimizer.update(learning_rate(settings.schedule, settings.lr, step, total_steps))
                    step += 1
                    loss_sum += loss * m
                    window += loss
                    if step < settings.log_every:
                        # The first fall from ln 10 happens within a few dozen steps: record each of
                        # them, or the curve jumps from the loss before training to the first window.
                        hooks.emit({"type": "step", "step": step, "epoch": epoch, "loss": loss, "steps": 1})
                    elif step % settings.log_every == 0:
                        hooks.emit(
                            {"type": "step", "step": step, "epoch": epoch, "loss": window / settings.log_every,
                             "steps": settings.log_every}
                        )  # fmt: skip
                        bar.set_postfix_str(f"loss {window / settings.log_every:.4f}")
                        window = 0.0
                    if probe_every and (step % probe_every == 0 or step == total_steps):
                        _look(hooks, probe, model, step, epoch)
                    bar.update(1)
            finally:
                bar.close()
            record = {
                "type": "epoch",
                "epoch": epoch,
                "step": step,
                "train_loss": loss_sum / n,
                "train_accuracy": correct / n,
                "lr": learning_rate(settings.schedule, settings.lr, step - 1, total_steps),
            }
            if validation is not None and len(validation[1]):
                val = evaluate(model, validation[0], validation[1], norm)
                record.update(val_loss=val.loss, val_accuracy=val.accuracy)
            record["seconds"] = time.perf_counter() - started
            hooks.emit(record)
            if probe_every:
                hooks.emit(probes.weights_record(model, step, epoch))
            if hooks.log:
                hooks.log(format_epoch(record, settings.epochs))
            epochs.append(record)
    return epochs


def _look(hooks: Hooks, probe, model, step: int, epoch: int, weights: bool = False) -> None:
    hooks.emit(probe.record(model, step, epoch))
    if weights:
        hooks.emit(probes.weights_record(model, step, epoch))


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
        if self.p:
            H = model.sizes["hidden"]
            self.mask, self.keep = np.empty((bs, H), self.dtype), np.empty((bs, H), np.bool_)

    def batch(self, order: np.ndarray, epoch_key: int | None, i: int):
        """Batch i's (x (m, D), y (m,), dropout mask (m, H) or None)."""
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
        mask = dropout_mask(rng, self.p, self.mask[:m], self.keep[:m]) if self.p else None
        return x, y, mask


def format_epoch(record: dict, epochs: int) -> str:
    line = (
        f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs}  "
        f"train loss {record['train_loss']:.4f} acc {100 * record['train_accuracy']:.2f}%"
    )
    if "val_loss" in record:
        line += f"  val loss {record['val_loss']:.4f} acc {100 * record['val_accuracy']:.2f}%"
    return line + f"  {record['seconds']:.1f}s"
