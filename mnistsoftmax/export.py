"""A checkpoint in formats other tools read: an ONNX graph (onnx, the `export` extra),
safetensors (written here: the format is a JSON header and the raw arrays), and the draw page as
one HTML file that needs no server (to_html).

The ONNX graph takes uint8 pixels, (N, 784) — one declared shape with a symbolic batch, as the
checker wants (a rank-3 (N, 28, 28) input would need a second graph input; reshape to (N, 784)
first) — applies the checkpoint's normalisation, and gives the logits and the probabilities:

    pixels uint8 (N, ...) -> Cast float32 -> Reshape (N, 784) -> (x / 255 - mean) / std
    then the model's layers (models.py: affine x W + b, the activation's node from activations.py),
    e.g. linear: logits = x W + b, mlp: logits = Relu(x W1 + b1) W2 + b2 (or Tanh, LeakyRelu)
    probabilities = Softmax(logits, axis 1)
"""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path

import numpy as np

from mnistsoftmax import jsontext
from mnistsoftmax.errors import MnistSoftmaxError

OPSET = 13  # Softmax over one axis, as every runtime of the last years has it


class ExportError(MnistSoftmaxError):
    """onnx is missing, or the model cannot be written in that format."""


def to_onnx(model, meta: dict) -> bytes:
    """The checkpoint as a serialised ONNX model (bytes); see the module docstring."""
    try:
        from onnx import TensorProto, checker, helper, numpy_helper
    except ImportError:
        raise ExportError("export --format onnx needs onnx: pip install 'mnistsoftmax[export]'") from None

    norm = meta["normalization"]
    p = {k: v.astype(np.float32) for k, v in model.params.items()}
    C = model.sizes["classes"]
    inits = [
        numpy_helper.from_array(np.array([-1, model.sizes["inputs"]], np.int64), "flat_shape"),
        numpy_helper.from_array(np.array(1.0 / (255.0 * norm["std"]), np.float32), "scale"),
        numpy_helper.from_array(np.array(-norm["mean"] / norm["std"], np.float32), "shift"),
        *(numpy_helper.from_array(v, k) for k, v in p.items()),
    ]
    nodes = [
        helper.make_node("Cast", ["pixels"], ["pixels_float"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["pixels_float", "flat_shape"], ["flat"]),
        helper.make_node("Mul", ["flat", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], ["x"]),  # (pixel / 255 - mean) / std
    ]
    nodes += _layers(helper, model.layers, "x", "logits")
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1))
    graph = helper.make_graph(
        nodes,
        f"mnistsoftmax_{model.kind}",
        [helper.make_tensor_value_info("pixels", TensorProto.UINT8, ["N", model.sizes["inputs"]])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", C]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", C]),
        ],  # fmt: skip
        inits,
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mnistsoftmax")
    onnx_model.ir_version = 8  # read by onnxruntime releases from 1.14 on
    for key, value in _metadata(meta).items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    checker.check_model(onnx_model, full_check=True)
    return onnx_model.SerializeToString()


def _layers(helper, layers, first: str, last: str) -> list:
    """The model's forward steps (models: ("affine", W, b), (activation name,)) as ONNX nodes from
    the tensor `first` to `last`."""
    from mnistsoftmax.activations import ACTIVATIONS

    nodes, current = [], first
    for i, (op, *names) in enumerate(layers):
        out = last if i == len(layers) - 1 else f"{op.replace('-', '_')}{i}"
        if op == "affine":
            W, b = names
            nodes += [helper.make_node("MatMul", [current, W], [f"{out}_product"]),
                      helper.make_node("Add", [f"{out}_product", b], [out])]  # fmt: skip
        elif op in ACTIVATIONS:
            nodes.append(ACTIVATIONS[op].onnx(helper, current, out))
        else:
            raise ExportError(f"no ONNX form for the layer {op!r}")
        current = out
    return nodes


def _metadata(meta: dict) -> dict[str, str]:
    """The checkpoint's JSON metadata as string pairs (what both formats can hold)."""
    from mnistsoftmax.losses import of_run

    keys = ("kind", "activation", "sizes", "dataset", "class_names", "normalization", "config", "metrics",
            "temperature", "version")  # fmt: skip
    exported = {k: jsontext.dumps(meta[k]) for k in keys if k in meta}
    # What the "probabilities" output is: a cross-entropy model's probabilities, or the softmax of
    # a hinge model's scores, which training never made probabilities.
    exported["outputs"] = of_run(meta.get("config")).outputs
    return exported


SAFETENSORS_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64"}


def to_safetensors(model, meta: dict) -> bytes:
    """The parameters as safetensors: an 8-byte little-endian header length, a JSON header (each
    tensor's dtype, shape and byte range; `__metadata__` the checkpoint's metadata as strings),
    then the arrays' bytes, little-endian, row-major."""
    header: dict = {"__metadata__": _metadata(meta)}
    chunks, offset = [], 0
    for name in sorted(model.params):
        a = np.ascontiguousarray(model.params[name])
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}  # fmt: skip
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads the header to a multiple of 8 bytes
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


# ---- the draw page as one file ------------------------------------------------------------------

STATIC = Path(__file__).parent / "web" / "static"
HTML_LIMIT = 5 * 1024 * 1024  # what the exported page may weigh: a mail attachment, a blog's asset
# With the timeline: a 784-512-10 net's 24 float16 snapshots are 18.6 MB, 24.8 MB in base64 (the page 28 MB).
TIMELINE_HTML_LIMIT = 48 * 1024 * 1024
IMAGE_LIMIT = 16 * 1024 * 1024  # the opening digit's file, as base64: a phone's photo is 3-8 MB
# The exported page may load nothing: the browser refuses any request but the page's own modules.
CONTENT_POLICY = ("default-src 'none'; script-src 'unsafe-inline' blob:; style-src 'unsafe-inline'; "
                  "img-src data: blob:; connect-src 'none'; form-action 'none'; base-uri 'none'")  # fmt: skip
KATEX = "vendor/katex.min.js"  # the formulas' renderer (MIT), a plain script: inlined as one
MODULE_IMPORT = re.compile(r"""(?:from|import)\s*\(?\s*"\./([\w.-]+\.js)\"""")
LOADER = """(() => {
  // The page's ES modules, each from a Blob URL whose imports name the others' Blob URLs.
  const sources = JSON.parse(document.getElementById("mnistsoftmax-modules").textContent), urls = {};
  const url = (name) => urls[name] || (urls[name] = URL.createObjectURL(new Blob([sources[name].replace(
    /((?:from|import)\\s*\\(?\\s*)"\\.\\/([\\w.-]+\\.js)"/g, (_, head, dep) => `${head}"${url(dep)}"`)],
    { type: "text/javascript" })));
  import(url("main.js"));
})();"""


def _modules(entry: str = "main.js") -> dict[str, str]:
    """The draw page's modules: `entry` and every module it imports, by file name."""
    found: dict[str, str] = {}
    waiting = [entry]
    while waiting:
        name = waiting.pop()
        if name not in found:
            found[name] = (STATIC / name).read_text(encoding="utf-8")
            waiting += MODULE_IMPORT.findall(found[name])
    return found


def _script_json(value) -> str:
    """JSON to sit inside <script>: no "</script>" or "<!--" can end or bend it."""
    return jsontext.dumps(value).replace("<", "\\u003c")


def _stored(array: np.ndarray, dtype: str) -> dict:
    data = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"shape": list(array.shape), "dtype": dtype, "data": base64.b64encode(data.tobytes()).decode("ascii")}


def _initial(initial: dict) -> dict:
    """The digit a page opens with (its bytes as base64) and its label, each optional."""
    body = {"label": initial.get("label")}
    if "pixels" in initial:
        pixels = np.asarray(initial["pixels"], dtype=np.uint8).reshape(-1)
        body["pixels"] = base64.b64encode(pixels.tobytes()).decode("ascii")
    elif "file" in initial:
        body.update(file=base64.b64encode(initial["file"]).decode("ascii"), type=initial["type"])
    return body


def page_model(model, meta: dict, name: str, kept=None, train_loss=(), initial: dict | None = None,
               untrained=None, note: str | None = None) -> dict:  # fmt: skip
    """What the page's engine (static/local.js) computes every answer from: the model's layers and
    weights (float32), the run's initial weights (`untrained`, float16: every class near 10 %), the
    checkpoint's description, the constants the answers share with Python's. With `kept`
    (snapshots.Snapshots) the timeline too: the snapshots as stored (float16), and the run's mean
    training loss, [step, loss] pairs. `note` says why there are no snapshots, or which were left
    out. With `initial` ({"pixels": 784 uint8 in MNIST's form} or {"file": an image file's bytes,
    "type": its MIME type}, and "label": a class or None) the page opens with that digit on the pad
    (mnistsoftmax.explore). Inside an exported page, and from GET /api/model on a served one."""
    from mnistsoftmax import checkpoint, images, lab, losses
    from mnistsoftmax.explain import HIDDEN_SHOWN

    entry = {**checkpoint.summary(model, meta), "snapshots": kept.steps if kept else None,
             "snapshots_note": None if kept else note}  # fmt: skip
    return {
        "entry": {"name": name, **entry},
        "normalization": meta["normalization"],
        "layers": [list(layer) for layer in model.layers],
        "fires": model.activation.info.fires,  # what a firing unit is, in the answers' words
        "unit_caption": model.unit_caption,
        "constants": {"hidden_shown": HIDDEN_SHOWN, "gradient_images": lab.GRADIENT_IMAGES,
                      "default_lr": lab.DEFAULT_LR, "margin": losses.MARGIN, "preview_side": images.PREVIEW_SIDE},
        "parameters": {n: _stored(p, "float32") for n, p in model.params.items()},
        "untrained": None if untrained is None else {n: _stored(p, "float16") for n, p in untrained.params.items()},
        "snapshots": None if kept is None else {
            "steps": kept.steps,
            "parameters": {n: _stored(np.stack(copies), copies[0].dtype.name) for n, copies in kept.arrays.items()},
            "train_loss": [list(pair) for pair in train_loss],
            "smoothing": checkpoint.label_smoothing(meta),
            **({"note": note} if note else {}),
        },
        "initial": None if initial is None else _initial(initial),
    }  # fmt: skip


def to_html(model, meta: dict, name: str, kept=None, train_loss=(), initial: dict | None = None) -> bytes:
    """The draw page as one self-contained HTML file: its code and styles, and the page's engine's
    document (page_model): every answer computed in the browser (static/local.js)."""
    from mnistsoftmax.inference import initial_model

    document = page_model(model, meta, name, kept, train_loss, initial, untrained=initial_model(meta),
                          note=None if kept else "the page was exported without the run's snapshots")  # fmt: skip
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    style = (STATIC / "style.css").read_text(encoding="utf-8")
    katex = (STATIC / KATEX).read_text(encoding="utf-8").replace("</script", "<\\/script")
    replacements = [
        ('<link rel="stylesheet" href="/static/style.css">',
         f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_POLICY}">\n  <style>\n{style}</style>'),
        (f'<script src="/static/{KATEX}"></script>',
         f"<script>/* KaTeX 0.19.1, MIT licence, (c) Khan Academy and other contributors */\n{katex}\n</script>"),
        ('<script type="module" src="/static/main.js"></script>',
         f'<script type="application/json" id="mnistsoftmax-model">{_script_json(document)}</script>\n'
         f'  <script type="application/json" id="mnistsoftmax-modules">{_script_json(_modules())}</script>\n'
         f"  <script>\n{LOADER}\n  </script>"),
        ('<a href="/train">watch it learn</a>', "a page exported by mnistsoftmax: the model runs in your browser"),
    ]  # fmt: skip
    for old, new in replacements:
        if old not in page:
            raise ExportError(f"the draw page has changed: {old!r} is not in static/index.html")
        page = page.replace(old, new)
    data = page.encode("utf-8")
    # The digit a page opens with is the caller's, not the model's: its bytes are bounded apart, and
    # the model's limit is on the rest (a large photo must not be blamed on the hidden units).
    image = len(document["initial"].get("file", "")) if document["initial"] else 0
    if image > IMAGE_LIMIT:
        raise ExportError(f"the image the page opens with weighs {image / 2**20:.1f} MB as text, above the "
                          f"{IMAGE_LIMIT / 2**20:.0f} MB a page should carry: give a smaller image, or its 28 x 28 "
                          "pixels")  # fmt: skip
    limit = HTML_LIMIT if kept is None else TIMELINE_HTML_LIMIT
    if len(data) - image > limit:
        fix = " or leave the timeline out (--no-snapshots)" if kept is not None else ""
        weight = (len(data) - image) / 2**20
        raise ExportError(f"the page would weigh {weight:.1f} MB, above the {limit / 2**20:.1f} MB "
                          f"a page to share should: export a smaller model (fewer hidden units){fix}")  # fmt: skip
    return data
