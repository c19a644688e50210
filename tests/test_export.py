"""export: the ONNX graph run by onnxruntime gives the package's own probabilities; safetensors
holds the very parameters and the metadata; bad inputs get one line."""

import json
import struct

import numpy as np
import pytest
from click.testing import CliRunner

from mnistsoftmax import checkpoint
from mnistsoftmax.cli import main
from mnistsoftmax.functional import softmax
from mnistsoftmax.inference import Normalization, logits
from tests.conftest import write_dataset
from tests.nets import NET_IDS, NETS


@pytest.fixture(scope="module", params=NETS, ids=NET_IDS)
def trained(request, tmp_path_factory):
    kind, widths, activation = request.param
    root = tmp_path_factory.mktemp(f"export-{kind}")
    write_dataset(root / "data")
    out = root / "model.npz"
    args = ["train", "--dataset", "custom", "--data-dir", str(root / "data"), "--model", kind,
            "--hidden", ",".join(map(str, widths or [24])), "--activation", activation, "--epochs", "2",
            "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out, root


def test_onnx_gives_the_package_probabilities(trained):
    """The graph passes onnx's checker with full_check (its input declared (N, 784)); onnxruntime
    on 1,000 images reports that shape and gives the package's probabilities and logits to 1e-5."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path, root = trained
    result = CliRunner().invoke(main, ["export", str(path), "--format", "onnx", "-o", str(root / "m.onnx")])
    assert result.exit_code == 0, result.output
    model, meta = checkpoint.load(path)
    images = np.random.default_rng(0).integers(0, 256, size=(1000, 28, 28)).astype(np.uint8)
    images[:500] = (images[:500] > 200) * 255  # half of them mostly paper, as digits are
    z = logits(model, images, Normalization(**meta["normalization"])).astype(np.float64)
    session = ort.InferenceSession(str(root / "m.onnx"), providers=["CPUExecutionProvider"])
    onnx.checker.check_model(onnx.load(str(root / "m.onnx")), full_check=True)
    assert session.get_inputs()[0].shape == ["N", 784]
    probabilities, onnx_logits = session.run(["probabilities", "logits"], {"pixels": images.reshape(1000, 784)})
    np.testing.assert_allclose(probabilities, softmax(z), atol=1e-5, rtol=0)
    np.testing.assert_allclose(onnx_logits, z, atol=1e-4, rtol=1e-5)
    metadata = {p.key: p.value for p in __import__("onnx").load(str(root / "m.onnx")).metadata_props}
    assert json.loads(metadata["normalization"]) == meta["normalization"]


def test_safetensors_holds_the_parameters_and_metadata(trained):
    """Parsed by hand from the format's definition: every parameter byte for byte, the metadata."""
    path, root = trained
    out = root / "m.safetensors"
    assert CliRunner().invoke(main, ["export", str(path), "--format", "safetensors", "-o", str(out)]).exit_code == 0
    data = out.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    body = data[8 + size :]
    model, meta = checkpoint.load(path)
    assert set(header) == {"__metadata__", *model.params}
    for name, p in model.params.items():
        start, end = header[name]["data_offsets"]
        assert header[name]["dtype"] == "F32" and header[name]["shape"] == list(p.shape)
        np.testing.assert_array_equal(np.frombuffer(body[start:end], "<f4").reshape(p.shape), p)
    assert json.loads(header["__metadata__"]["config"]) == meta["config"]
    assert size % 8 == 0


def test_damaged_or_foreign_files_are_refused_in_one_line(trained, tmp_path):
    """An .onnx or a damaged .npz given as a checkpoint, and a missing checkpoint: one line, exit 1."""
    path, root = trained
    CliRunner().invoke(main, ["export", str(path), "--format", "onnx", "-o", str(tmp_path / "m.onnx")])
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(path.read_bytes()[:2000])
    for bad in (tmp_path / "m.onnx", damaged, tmp_path / "missing.npz"):
        result = CliRunner().invoke(main, ["export", str(bad), "--format", "safetensors", "-o", str(tmp_path / "x")])
        assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not (tmp_path / "x").exists()
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1 and "not a mnistsoftmax checkpoint" in result.stderr
