"""In a notebook: a classifier's rich display, and the draw page with the lab inline.

`mnistsoftmax.explore(clf, image=None, label=None)` is the page `export --format html` writes,
shown in an output cell inside an iframe (srcdoc): the model runs in the browser, with no server
and no kernel round trip, and each output is a document of its own, so that several in one
notebook share no ids and no state. The notebook keeps the page in its output, so that it still
works saved as HTML with nbconvert. Its size is the exported page's: about 4 bytes of base64 per 3
bytes of weights (float32), plus 2 bytes per weight per snapshot (float16) with the timeline;
`snapshots=False` leaves the timeline out.

Nothing here is imported by `predict` or `train`; it needs no package beyond the core's.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import numpy as np

from mnistsoftmax.errors import MnistSoftmaxError

EXPLORER_HEIGHT = 800  # px: the pad, the prediction and the first views; the rest scrolls inside
WEIGHTS_SHOWN = 10  # first-layer images in the rich display: every class of a linear model
BROWSER_IMAGES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif",
                  b"BM": "image/bmp"}  # fmt: skip  # what every browser decodes, by its first bytes


class Explorer:
    """The draw page and lab of one classifier, for an output cell. `html` is the page itself."""

    def __init__(self, page: bytes, title: str, height: int):
        self.html, self.title, self.height = page.decode("utf-8"), title, height

    def __repr__(self) -> str:
        return f"Explorer({self.title}, a {len(self.html) / 2**20:.1f} MB page: display it in a notebook)"

    def _repr_html_(self) -> str:
        return (f'<iframe class="mnistsoftmax-explorer" title="{html.escape(self.title)}" '
                f'srcdoc="{html.escape(self.html, quote=True)}" '
                f'style="width: 100%; height: {self.height}px; border: 1px solid #ccc; border-radius: 4px">'
                "</iframe>")  # fmt: skip


def explore(clf, image=None, label: int | None = None, snapshots: bool = True, height: int = EXPLORER_HEIGHT):
    """The draw page and the lab of `clf` (a Classifier), inline in a notebook's output cell.

    image: the digit it opens with: an image file's path (preprocessed in the page as an upload
    is), a PIL image, or a 28x28 uint8 array in MNIST's form (light ink on black, used as it is);
    None opens on a blank pad. label: the true class, for the loss and the lab's gradients.
    snapshots: with the training timeline, when the checkpoint has one (the page then weighs about
    2 bytes per weight per snapshot more); False keeps the output small.
    """
    from mnistsoftmax.export import to_html

    if not (isinstance(height, int) and 100 <= height <= 10000):
        raise MnistSoftmaxError(f"height must be a whole number of pixels from 100 to 10000, not {height!r}")
    initial = {} if image is None else _initial(clf, image)
    if label is not None:
        classes = len(clf.class_names)
        if isinstance(label, bool) or not isinstance(label, int | np.integer) or not 0 <= label < classes:
            raise MnistSoftmaxError(f"label must be a class number from 0 to {classes - 1}, not {label!r}")
        initial["label"] = int(label)
    kept, curve = clf.timeline() if snapshots else (None, [])
    name = clf.path.stem if clf.path is not None else "model"
    page = to_html(clf.model, clf.meta, name, kept, curve, initial=initial or None)
    return Explorer(page, f"mnistsoftmax explorer: {clf.model.describe()}", height)


def _initial(clf, image) -> dict:
    """explore's image -> the page's opening digit: a file's bytes or MNIST-form pixels."""
    if isinstance(image, str | Path):
        from mnistsoftmax.images import preprocess

        path = Path(image)
        digit = preprocess(path)  # a file the page could not read fails here, in one line
        data = path.read_bytes()
        kind = next((t for magic, t in BROWSER_IMAGES.items() if data.startswith(magic)), None)
        if kind is None:  # a format browsers may not decode: hand over the digit Python made of it
            return {"pixels": digit.reshape(-1)}
        return {"file": data, "type": kind}
    if hasattr(image, "save") and hasattr(image, "mode"):  # a PIL image
        from mnistsoftmax.images import preprocess

        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        preprocess(buffer.getvalue(), "the image")
        return {"file": buffer.getvalue(), "type": "image/png"}
    pixels = np.asarray(image)
    if pixels.shape not in ((28, 28), (784,)):
        raise MnistSoftmaxError(f"image must be a path, a PIL image or a 28x28 array, not one of shape {pixels.shape}")
    return {"pixels": clf._pixels(pixels.reshape(28, 28))[0]}


def classifier_html(clf) -> str:
    """A Classifier's rich display: model and widths, loss, data set, test accuracy, calibration,
    the snapshots kept, and a strip of first-layer weight images (red positive, blue negative)."""
    from mnistsoftmax import checkpoint

    info = checkpoint.summary(clf.model, clf.meta)
    rows = [("model", info["description"]), ("loss", f"{info['loss']} (outputs: {info['outputs']})"),
            ("data set", info["dataset"] or "unknown")]  # fmt: skip
    if info["accuracy"] is not None:
        rows.append(("test accuracy", f"{100 * info['accuracy']:.2f} %"))
    reliability = info["reliability"]
    if info["temperature"] is not None:
        calibrated = reliability.get("calibrated") if reliability else None
        after = f", ECE {100 * calibrated['ece']:.2f} % after" if calibrated else ""
        before = f": ECE {100 * reliability['ece']:.2f} % before" if reliability else ""
        rows.append(("calibration", f"temperature T = {info['temperature']:.3f}{before}{after}"))
    elif reliability:
        rows.append(("calibration", f"ECE {100 * reliability['ece']:.2f} % (no temperature fitted)"))
    if info["epochs"] is not None:
        rows.append(("training", f"{info['epochs']} epochs, batch {info['batch_size']}, lr {info['lr']}, "
                                 f"seed {info['seed']}"))  # fmt: skip
    if clf.path is not None:
        rows.append(("checkpoint", str(clf.path)))
    table = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                    f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>" for k, v in rows)  # fmt: skip
    return (f"<div class='mnistsoftmax-classifier'><strong>Classifier</strong>"
            f"<table>{table}</table>{_weight_strip(clf)}</div>")  # fmt: skip


def _weight_strip(clf) -> str:
    """The first layer's weights into its first units (a linear model's: into each class), each as a
    28x28 picture, red where ink raises the unit, blue where it lowers it."""
    first = clf.model.layers[0][1]
    W = np.asarray(clf.model.params[first], dtype=np.float64)  # (784, K)
    if W.shape[0] != 784:
        return ""
    shown = min(WEIGHTS_SHOWN, W.shape[1])
    hidden = len(clf.model.layers) > 1
    names = [f"unit {k}" for k in range(shown)] if hidden else clf.class_names[:shown]
    cells = []
    for k in range(shown):
        uri = "data:image/png;base64," + _base64(png(diverging(W[:, k].reshape(28, 28))))
        cells.append(f"<figure style='margin:0 4px 0 0;text-align:center'><img src='{uri}' width='56' height='56' "
                     f"style='image-rendering:pixelated' alt='{html.escape(names[k])}'>"
                     f"<figcaption style='font-size:80%'>{html.escape(names[k])}</figcaption></figure>")  # fmt: skip
    caption = f"first-layer weights, {'the first ' + str(shown) + ' units' if hidden else 'one per class'}"
    return (f"<div style='margin-top:4px'>{html.escape(caption)}: red raises, blue lowers</div>"
            f"<div style='display:flex;flex-wrap:wrap'>{''.join(cells)}</div>")  # fmt: skip


def diverging(values: np.ndarray) -> np.ndarray:
    """(H, W) real -> (H, W, 3) uint8: white at 0, red at +max|v|, blue at -max|v|."""
    scale = np.abs(values).max() or 1.0
    v = np.clip(values / scale, -1.0, 1.0)
    fade = np.rint(255 * (1 - np.abs(v))).astype(np.uint8)
    full = np.full_like(fade, 255)
    return np.stack([np.where(v >= 0, full, fade), fade, np.where(v <= 0, full, fade)], axis=-1)


def png(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> a PNG file's bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _base64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")
