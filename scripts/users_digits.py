"""How well checkpoints read digits as users make them: the first MNIST test digits rendered the
ways tests/test_predict_real.py renders them (paint program, marker, fine pen, phone photo,
transparent PNG, small in a corner), tilted by 20 degrees, and as phone photos of paper (uneven
light, grey noisy paper, a shadow, ruled and squared notebook pages; JPEG), then through
`predict`'s own preprocessing; accuracy against the true labels.

    python scripts/users_digits.py CHECKPOINT [CHECKPOINT ...] [--data-dir data/mnist] [--count 1000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnistsoftmax import checkpoint, datasets  # noqa: E402
from mnistsoftmax.images import preprocess  # noqa: E402
from mnistsoftmax.inference import Normalization, logits  # noqa: E402
from tests.test_predict_real import PHOTOS, RENDERERS, encode, large_ink, on_canvas  # noqa: E402


def tilted(digit, rng):
    """Black on white, 8x, turned 20 degrees one way or the other: a slanted hand."""
    ink = large_ink(digit, 8).rotate(float(rng.choice([-20, 20])), resample=Image.Resampling.BICUBIC, expand=True)
    return encode(Image.eval(on_canvas(ink, (400, 400), rng), lambda v: 255 - v))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "mnist"))
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    test = datasets.load("mnist", args.data_dir, splits=("test",)).test
    digits, labels = test.images[: args.count], test.labels[: args.count]
    models = [checkpoint.load(p) for p in args.checkpoints]
    renderers = [None, *RENDERERS, tilted, *PHOTOS]
    print(f"{'rendering':<18}" + "".join(f"{p.name:>22}" for p in args.checkpoints))
    print("-" * (18 + 22 * len(models)))
    for render in renderers:
        rng = np.random.default_rng(1)
        if render is None:
            inputs, name = digits, "MNIST as it is"
        else:
            inputs = np.stack([preprocess(render(d, rng), f"digit {i}") for i, d in enumerate(digits)])
            name = render.__name__
        row = f"{name:<18}"
        for model, meta in models:
            predicted = logits(model, inputs, Normalization(**meta["normalization"])).argmax(axis=1)
            row += f"{100 * np.mean(predicted == labels):21.1f}%"
        print(row)
    print(f"{args.count} MNIST test digits per row")
    return 0


if __name__ == "__main__":
    sys.exit(main())
