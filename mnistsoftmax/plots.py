"""Drawing the intuition figures with matplotlib (the optional `plot` extra). The numbers come from
analysis.py; here they are only laid out. Figures are drawn on matplotlib's Figure objects with
the Agg canvas (no pyplot, no window) at a fixed size, and written atomically."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from mnistsoftmax import analysis
from mnistsoftmax.errors import MnistSoftmaxError
from mnistsoftmax.fileio import atomic_write

DPI = 100
LN10 = math.log(10)
# name -> (width, height) in inches; the PNG is DPI times that in pixels.
SIZES = {
    "curves": (12, 4.5),
    "probes": (20, 11),  # the height for 5 moments; fewer, less
    "logits": (20, 6),
    "softmax": (12, 4.5),
    "log_softmax": (12, 4.5),
    "loss_per_sample": (12, 4.5),
    "confusion": (7, 6),
    "mistakes": (12, 7),
    "calibration": (12, 4.5),
    "weights": (12, 7),
    "last_units": (12, 4),
    "distortions": (10, 8),
    "compare": (16, 9),  # plot --compare only
    "through_training": (12, 5),
}
CAPTIONS = {
    "through_training": "One digit through training: its probability of each class under the weights of each "
    "snapshot the run kept (log step axis, step 0 at the left): at step 0 every class sits near 10 % (dashed), then "
    "the classes separate until one takes nearly all.",
    "curves": "Training curves: the loss starts at ln 10 ≈ 2.303 (dashed), where every class has 10 %, and falls "
    "towards 0; the gap between training and validation is what the net memorised.",
    "logits": "Raw outputs (logits) for test images of each digit: untrained, all ten outputs look alike whatever "
    "the digit; trained, the output of the true digit stands out in every panel.",
    "softmax": "Softmax of the outputs for images of one digit: untrained, every class gets about 0.1; trained, "
    "the true class gets nearly 1 and the others nearly 0.",
    "log_softmax": "Log-softmax, the same way: untrained, every class sits near -ln 10 ≈ -2.3; trained, the true "
    "class rises to about 0 and the others fall far below. The loss is minus the true class's value.",
    "loss_per_sample": "Cross entropy of each image of a test batch: untrained, all near ln 10; trained, most near 0, "
    "with a few confident mistakes far above.",
    "confusion": "Confusion matrix of the trained model on the test set: the diagonal is right; off it, which "
    "classes are taken for which.",
    "mistakes": "The test images the model got wrong while most confident, with its top probabilities: often "
    "ambiguous writing or a doubtful label.",
    "distortions": "Training digits (left column) beside distorted copies of them, drawn as the run drew its "
    "batches: the network never saw the same image twice.",
    "probes": "The softmax of the probe images (a fixed set of test images of each class) at moments of "
    "training, one row each, one panel per true class, one box per output: at step 0 every box sits near 0.1; "
    "as the loss falls, the true class's box rises to 1 and the others sink to 0.",
    "calibration": "Margins and calibration on the test set. Left: the correct class's margin z_y - max other "
    "z of each image (the hinge loss is satisfied from 1 on and stops pushing; cross entropy keeps pushing). "
    "Right: the reliability diagram, accuracy against confidence in 15 bins of the top probability (the "
    "diagonal is a calibrated model), before and after temperature scaling.",
    "compare": "Two checkpoints side by side: their training loss and margins as training went (probe images), "
    "the test margins, and their reliability diagrams.",
    "weights": "First-layer weights as 28x28 images (red positive, blue negative). For linear, the ten class "
    "templates. For mlp, the 16 hidden units with the strongest outgoing weights (rank 1 the strongest), each "
    "shown as it ended and as what training added to its random start (W1 - W1 at initialisation); with "
    "two or more hidden layers, the first layer's units ranked by their weights into the second.",
    "last_units": "The last hidden layer of a deeper mlp: its 16 units with the strongest weights into the "
    "logits, each drawn as its weights carried down to the pixels through the layers below (W1 W2 ... column, "
    "every unit below taken as on; an input that turns some off sees a part of this picture).",
}


class PlotError(MnistSoftmaxError):
    """matplotlib is missing, or a figure could not be written."""


def _figure(name: str):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError("plot needs matplotlib: pip install 'mnistsoftmax[plot]'") from None
    return Figure(figsize=SIZES[name], dpi=DPI)


def _save(fig, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
    return path


def write_figures(
    folder: Path,
    trained,
    untrained,
    images: np.ndarray,
    labels: np.ndarray,
    norm,
    class_names: list[str],
    records: list[dict],
    digit: int,
    batch: int = 200,
    distortion=None,
    train_images: np.ndarray | None = None,
    temperature: float | None = None,
    timeline: tuple | None = None,
    smoothing: float = 0.0,
) -> list[Path]:
    """Write every figure and index.html into folder; returns the paths written. With the run's
    distortion settings and some training images (N, 28, 28), also the distorted copies; with
    `timeline` (explain.through_training's numbers of one digit, its label, its name), that digit's
    path through the run's snapshots."""
    _figure("curves")  # fail early, before any work, when matplotlib is missing
    folder.mkdir(parents=True, exist_ok=True)
    before, after = analysis.outputs(untrained, images, norm), analysis.outputs(trained, images, norm)
    written = []
    if any(r.get("type") in ("step", "epoch") for r in records):
        written.append(_curves(folder, analysis.training_curves(records)))
    moments = analysis.probe_moments(records, len(class_names))
    if len(moments) >= 2:
        written.append(_probes(folder, moments, class_names))
    written.append(_logits(folder, before["logits"], after["logits"], labels))
    for kind in ("softmax", "log_softmax"):
        written.append(_one_digit(folder, kind, before[kind], after[kind], labels, digit, class_names))
    loss_before = analysis.per_sample_loss(untrained, images[:batch], labels[:batch], norm)
    loss_after = analysis.per_sample_loss(trained, images[:batch], labels[:batch], norm)
    written.append(_loss_per_sample(folder, loss_before, loss_after))
    written.append(_confusion(folder, analysis.confusion(after["softmax"].argmax(axis=1), labels), class_names))
    mistakes = analysis.confident_mistakes(after["softmax"], labels, k=16)
    written.append(_mistakes(folder, images, labels, after["softmax"], mistakes, class_names))
    written.append(_calibration(folder, after["logits"], labels, temperature))
    shown = analysis.hidden_unit_images(trained, untrained, count=16)
    # What the model says its first layer's columns are picks the figure: class templates, or units.
    draw = {"class": _templates, "unit": _hidden_units}[trained.unit_caption]
    written.append(draw(folder, shown, class_names))
    last = analysis.last_layer_units(trained, count=16)
    if last is not None:
        written.append(_last_units(folder, last, len(trained.hidden_widths)))
    if distortion is not None and train_images is not None:
        written.append(_distortions(folder, train_images[:8], distortion))
    if timeline is not None:
        written.append(_through_training(folder, *timeline, class_names, smoothing))
    written.append(_index(folder, written))
    return written


def _calibration(folder, Z, labels, temperature) -> Path:
    from mnistsoftmax import calibration
    from mnistsoftmax.losses import margins

    fig = _figure("calibration")
    left, right = fig.subplots(1, 2)
    _margin_histogram(left, {"trained": margins(Z, labels)})
    curves = {"softmax(z)": calibration.softmax_at(Z)}
    if temperature is not None:
        curves[f"softmax(z / T), T = {temperature:.3f}"] = calibration.softmax_at(Z, temperature)
    _reliability(right, curves, labels)
    fig.tight_layout()
    return _save(fig, folder, "calibration")


def _margin_histogram(ax, named: dict) -> None:
    for name, values in named.items():
        ax.hist(np.clip(values, -10, 40), bins=100, range=(-10, 40), histtype="step", lw=1.5,
                label=f"{name}: median {np.median(values):.2f}")  # fmt: skip
    ax.axvline(1, ls="--", color="gray", label="the hinge's margin, 1")
    ax.axvline(0, ls=":", color="gray")
    ax.set(xlabel="margin z_y - max other z (clipped to [-10, 40])", ylabel="test images", title="Margins")
    ax.legend(fontsize=8)


def _reliability(ax, named: dict, labels) -> None:
    from mnistsoftmax import calibration

    ax.plot([0, 1], [0, 1], ls="--", color="gray", label="calibrated")
    for name, p in named.items():
        r = calibration.reliability(p, labels)
        centres = (r["edges"][:-1] + r["edges"][1:]) / 2
        ece = calibration.expected_calibration_error(p, labels)
        ax.plot(centres, r["accuracy"], "o-", label=f"{name}: ECE {ece:.4f}")
    ax.set(xlabel="confidence (top probability), 15 bins", ylabel="accuracy", title="Reliability", xlim=(0, 1),
           ylim=(0, 1.02))  # fmt: skip
    ax.legend(fontsize=8)


def write_comparison(folder: Path, runs: dict, images: np.ndarray, labels: np.ndarray) -> Path:
    """One figure comparing checkpoints: runs maps a name to (model, norm, records, temperature)."""
    from mnistsoftmax import calibration
    from mnistsoftmax.losses import margins

    fig = _figure("compare")
    (loss, margin_curve), (test_margins, reliability) = fig.subplots(2, 2)
    outputs = {name: analysis.outputs(m, images, norm)["logits"] for name, (m, norm, _, _) in runs.items()}
    for name, (_, _, records, _) in runs.items():
        c = analysis.training_curves(records)
        loss.plot(c["step"], c["step_loss"], lw=0.8, label=name)
        probes = [r for r in analysis.probe_records(records, outputs[name].shape[1]) if "margin" in r]
        if probes:
            steps = [max(r["step"], 1) for r in probes]
            margin_curve.plot(steps, [r["margin"]["median"] for r in probes], label=f"{name}: median")
            margin_curve.fill_between(steps, [r["margin"]["q1"] for r in probes], [r["margin"]["q3"] for r in probes],
                                      alpha=0.2)  # fmt: skip
    loss.set(xscale="log", xlabel="step", ylabel="training loss (each run's own)", title="Loss")
    loss.legend(fontsize=8)
    margin_curve.axhline(1, ls="--", color="gray")
    margin_curve.set(xscale="log", xlabel="step", ylabel="margin (probe images)", title="Margins as training went")
    margin_curve.legend(fontsize=8)
    _margin_histogram(test_margins, {name: margins(Z, labels) for name, Z in outputs.items()})
    _reliability(reliability, {name: calibration.softmax_at(Z) for name, Z in outputs.items()}, labels)
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    return _save(fig, folder, "compare")


def _distortions(folder, images, distortion) -> Path:
    from mnistsoftmax.augment import distort

    fig = _figure("distortions")
    copies = 7
    axes = fig.subplots(len(images), copies + 1)
    rng = np.random.default_rng(0)
    for r, image in enumerate(images):
        distorted = distort(np.repeat(image[None], copies, axis=0), distortion, rng)
        for c, shown in enumerate([image, *distorted]):
            ax = axes[r, c]
            ax.imshow(shown, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("training digit", fontsize=9)
    for c in range(1, copies + 1):
        axes[0, c].set_title(f"distorted {c}", fontsize=9)
    fig.suptitle("What the network was shown: " + distortion.describe())
    fig.tight_layout()
    return _save(fig, folder, "distortions")


def _probes(folder, moments: list[dict], class_names) -> Path:
    fig = _figure("probes")
    fig.set_figheight(1.0 + 2.0 * len(moments))
    classes = moments[0]["classes"]
    axes = np.atleast_2d(fig.subplots(len(moments), len(classes), sharey=True))
    for row, record in enumerate(moments):
        s = record["softmax"]
        for col, true_class in enumerate(classes):
            stats = [{"med": s["median"][col][o], "q1": s["q1"][col][o], "q3": s["q3"][col][o],
                      "whislo": s["min"][col][o], "whishi": s["max"][col][o], "fliers": []}
                     for o in range(len(s["median"][col]))]  # fmt: skip
            ax = axes[row, col]
            boxes = ax.bxp(stats, showfliers=False, patch_artist=True, widths=0.6)
            for o, box in enumerate(boxes["boxes"]):
                box.set_facecolor("tab:blue" if o == true_class else "0.8")
            for median in boxes["medians"]:
                median.set_color("black")
            ax.set_ylim(-0.03, 1.03)
            ax.set_xticks(range(1, len(stats) + 1), [str(o) for o in range(len(stats))], fontsize=7)
            ax.tick_params(axis="y", labelsize=7)
            if row == 0:
                ax.set_title(f"true {class_names[true_class]}", fontsize=9)
        axes[row, 0].set_ylabel(f"step {record['step']}\nloss {record['loss']:.3f}\n"
                                f"acc {100 * record['accuracy']:.0f} %", fontsize=8)  # fmt: skip
    fig.suptitle("Softmax per true class on the probe images as training goes (quartile boxes, whiskers min-max; "
                 "the true class in blue)")  # fmt: skip
    fig.tight_layout()
    return _save(fig, folder, "probes")


def _curves(folder, c) -> Path:
    fig = _figure("curves")
    loss, acc = fig.subplots(1, 2)
    if len(c["initial_loss"]):
        loss.plot([0], c["initial_loss"][:1], "k*", ms=10, label="before training")
    # The first steps one by one, then means of log_every steps: two series, not one line (the
    # first mean, the start's 2.3 included, would read as the loss rising again).
    single = c["step_count"] <= 1
    loss.plot(c["step"][single], c["step_loss"][single], lw=0.8, alpha=0.6, label="train, each step")
    if (~single).any():
        window = int(c["step_count"][~single][0])
        loss.plot(c["step"][~single], c["step_loss"][~single], lw=0.8, alpha=0.8,
                  label=f"train, mean of {window} steps")  # fmt: skip
    loss.plot(c["epoch_step"], c["train_loss"], "o-", label="train, per epoch")
    if not np.all(np.isnan(c["val_loss"])):
        loss.plot(c["epoch_step"], c["val_loss"], "s-", label="validation, per epoch")
    loss.axhline(LN10, ls="--", color="gray", label="ln 10 = 2.303")
    # Logarithmic in steps (linear below 1, so that step 0 is drawn): the first fall from ln 10,
    # within a few dozen steps, gets as much room as the thousands of steps after it.
    loss.set_xscale("symlog", linthresh=1, linscale=0.3)
    loss.set_xlim(left=-0.4)  # room for the star at step 0
    loss.set(xlabel="step (logarithmic)", ylabel="cross entropy", title="Loss", ylim=(0, max(2.5, LN10 * 1.1)))
    loss.legend()
    acc.plot(c["epoch"], 100 * c["train_accuracy"], "o-", label="train")
    if not np.all(np.isnan(c["val_accuracy"])):
        acc.plot(c["epoch"], 100 * c["val_accuracy"], "s-", label="validation")
    acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    acc.xaxis.get_major_locator().set_params(integer=True)
    acc.legend()
    fig.tight_layout()
    return _save(fig, folder, "curves")


def _logits(folder, before, after, labels) -> Path:
    fig = _figure("logits")
    axes = fig.subplots(2, 10, sharey="row")
    for row, (values, state) in enumerate(((before, "untrained"), (after, "trained"))):
        for d in range(10):
            ax = axes[row, d]
            ax.boxplot(analysis.columns_for_digit(values, labels, d), showfliers=False)
            ax.set_xticks(range(1, 11), [str(i) for i in range(10)], fontsize=7)
            ax.set_title(f"{state}, images of {d}", fontsize=8)
    axes[0, 0].set_ylabel("logit")
    axes[1, 0].set_ylabel("logit")
    fig.tight_layout()
    return _save(fig, folder, "logits")


def _one_digit(folder, kind, before, after, labels, digit, class_names) -> Path:
    fig = _figure(kind)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, values, state in ((axes[0], before, "untrained"), (axes[1], after, "trained")):
        ax.boxplot(analysis.columns_for_digit(values, labels, digit), showfliers=False)
        ax.set_xticks(range(1, 11), [str(i) for i in range(10)])
        ax.set(xlabel="class", title=f"{state}: {kind.replace('_', '-')} for images of {class_names[digit]}")
        ax.axhline(0.1 if kind == "softmax" else -LN10, ls="--", color="gray")
    axes[0].set_ylabel("probability" if kind == "softmax" else "log-probability")
    fig.tight_layout()
    return _save(fig, folder, kind)


def _smoothing_line(smoothing: float, classes: int) -> str:
    """A figure's word on label smoothing, where its run used it: p stops short of 1 on purpose."""
    if not smoothing:
        return ""
    target = 1 - smoothing + smoothing / classes
    return f"\nlabel smoothing e = {smoothing:g}: trained toward p = {target:.3g} on the label, not 1"


def _through_training(folder, seen: dict, label: int | None, name: str, class_names, smoothing: float = 0.0) -> Path:
    """p of each class against step (symmetric log axis, so that step 0 is drawn), the label's bold."""
    fig = _figure("through_training")
    ax = fig.subplots()
    steps, p = np.asarray(seen["steps"]), np.asarray(seen["probabilities"])
    followed = label if label is not None else int(seen["predicted"][-1])
    for c in range(p.shape[1]):
        strong = c == followed
        ax.plot(steps, p[:, c], marker="o", ms=3 if strong else 2, lw=2.4 if strong else 1, alpha=1 if strong else 0.7,
                color="black" if strong else None,
                label=class_names[c] + (" (label)" if c == label else " (the answer)" if strong else ""))  # fmt: skip
    ax.axhline(0.1, ls="--", color="gray", lw=1)
    ax.text(steps[-1], 0.1, " 10 %", va="bottom", ha="right", color="gray")
    ax.set_xscale("symlog", linthresh=1)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.set(xlabel="step (log scale; 0 at the left)", ylabel="probability", ylim=(0, 1), xlim=(0, steps[-1] * 1.05),
           title=f"{name} under each of the run's {len(steps)} snapshots"
           + _smoothing_line(smoothing, len(class_names)))  # fmt: skip
    ax.legend(ncols=2, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return _save(fig, folder, "through_training")


def _loss_per_sample(folder, before, after) -> Path:
    fig = _figure("loss_per_sample")
    ax = fig.subplots()
    x = np.arange(len(before))
    ax.scatter(x, before, s=10, label=f"untrained (mean {before.mean():.3f})")
    ax.scatter(x, after, s=10, label=f"trained (mean {after.mean():.3f})")
    ax.axhline(LN10, ls="--", color="gray", label="ln 10")
    ax.set(xlabel="test image", ylabel="cross entropy", title="Loss of each image of a test batch")
    ax.legend()
    fig.tight_layout()
    return _save(fig, folder, "loss_per_sample")


def _confusion(folder, matrix, class_names) -> Path:
    fig = _figure("confusion")
    ax = fig.subplots()
    shown = ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if count > matrix.max() / 3 else "black")  # fmt: skip
    ax.set_xticks(range(10), [str(i) for i in range(10)])
    ax.set_yticks(range(10), [f"{i} {n}" if n != str(i) else str(i) for i, n in enumerate(class_names)])
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (colour: log of the count)")
    fig.colorbar(shown, ax=ax)
    fig.tight_layout()
    return _save(fig, folder, "confusion")


def _mistakes(folder, images, labels, probabilities, indices, class_names) -> Path:
    fig = _figure("mistakes")
    axes = fig.subplots(2, 8).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, indices, strict=False):
        top = np.argsort(-probabilities[i])[:3]
        ax.imshow(images[i], cmap="gray")
        ranked = "\n".join(f"{class_names[c]}: {probabilities[i, c]:.3f}" for c in top)
        ax.set_title(f"true {class_names[labels[i]]}\n{ranked}", fontsize=7)
    fig.suptitle("Most confidently misclassified test images (true class, then the top 3 probabilities)")
    fig.tight_layout()
    return _save(fig, folder, "mistakes")


def _templates(folder, shown, class_names) -> Path:
    fig = _figure("weights")
    for k, ax in enumerate(fig.subplots(2, 5).ravel()):
        ax.axis("off")
        ax.imshow(shown["weights"][k], cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(class_names[shown["units"][k]], fontsize=9)
    fig.suptitle("First-layer weights: one template per class (red: ink there raises the class's logit)")
    fig.tight_layout()
    return _save(fig, folder, "weights")


def _hidden_units(folder, shown, class_names) -> Path:
    fig = _figure("weights")
    axes = fig.subplots(4, 8)
    for k, unit in enumerate(shown["units"]):
        row, col = divmod(2 * k, 8)
        for ax, image, what in ((axes[row, col], shown["weights"][k], f"#{k + 1}: unit {unit}"),
                                (axes[row, col + 1], shown["added"][k], "added by training")):  # fmt: skip
            ax.imshow(image, cmap="RdBu_r", vmin=-1, vmax=1)
            ax.set_title(what, fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle("Hidden units with the strongest outgoing weights, ranked: the weights, "
                 "and what training added to them (W - W at initialisation)")  # fmt: skip
    fig.tight_layout()
    return _save(fig, folder, "weights")


def _last_units(folder, shown, layer: int) -> Path:
    fig = _figure("last_units")
    axes = fig.subplots(2, 8)
    for ax, unit, picture, rank in zip(axes.ravel(), shown["units"], shown["pictures"], range(1, 17), strict=False):
        ax.imshow(picture, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(f"#{rank}: unit {unit}", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(f"Hidden layer {layer} (the last) by its strongest weights into the logits: each unit's weights "
                 "carried down to the pixels")  # fmt: skip
    fig.tight_layout()
    return _save(fig, folder, "last_units")


def _index(folder: Path, written: list[Path]) -> Path:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>mnistsoftmax figures</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}img{max-width:100%}"
        "figure{margin:2em 0}</style></head><body><h1>What the network learned</h1>",
    ]
    for path in written:
        caption = html.escape(CAPTIONS[path.stem])
        parts.append(f"<figure><img src='{path.name}' alt='{path.stem}'><figcaption>{caption}</figcaption></figure>")
    parts.append("</body></html>\n")
    index = folder / "index.html"
    atomic_write(index, lambda f: f.write("\n".join(parts).encode("utf-8")))
    return index
