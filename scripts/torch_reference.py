"""The same training in PyTorch, as a reference for accuracy and speed (never used by the package).

Same architecture, same initial weights (drawn by mnistsoftmax from the same seed), same
validation split, same minibatch order, same SGD (momentum, Nesterov's or not, L2 as 2*reg*W on
weights only, the same learning-rate schedule), the same label smoothing, and for a run with
distortions the same distorted batches (mnistsoftmax's own Distorter, drawing what `train` draws),
float32, on the CPU.

    pip install torch==2.13.0
    python scripts/torch_reference.py --config configs/mlp.toml --data-dir data/mnist
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from mnistsoftmax import datasets
from mnistsoftmax.augment import Distorter, Distortion
from mnistsoftmax.config import resolve
from mnistsoftmax.inference import flat
from mnistsoftmax.optim import learning_rate
from mnistsoftmax.registry import ACTIVATIONS, LEAKY_SLOPE
from mnistsoftmax.training import batch_generator, prepare_run

# PyTorch's twin of each of mnistsoftmax's activations (activations.py), by the name a layer has.
TORCH_ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "leaky-relu": lambda x: torch.nn.functional.leaky_relu(x, LEAKY_SLOPE),
}
assert set(TORCH_ACTIVATIONS) == set(ACTIVATIONS), "an activation without its PyTorch twin"


class TorchModel(torch.nn.Module):
    """Parameters in mnistsoftmax's layout (W is inputs x outputs), so the weights copy over as they
    are; the forward walks the model's layers as the exporters do (affine, the activation)."""

    def __init__(self, model):
        super().__init__()
        self.steps = model.layers
        for name, value in model.params.items():
            self.register_parameter(name, torch.nn.Parameter(torch.from_numpy(value.copy())))

    def forward(self, x):
        for op, *names in self.steps:
            x = x @ getattr(self, names[0]) + getattr(self, names[1]) if op == "affine" else TORCH_ACTIVATIONS[op](x)
        return x


def train_torch(config: dict, data, threads: int = 2, on_epoch=None):
    """Train in PyTorch; returns (model, per-epoch seconds, test accuracy)."""
    torch.set_num_threads(threads)
    # The initial weights, split and shuffles drawn exactly as `mnistsoftmax train` draws them.
    run = prepare_run(data.train.images, data.train.labels, config["model"], config["hidden"],
                      config["val_split"], config["seed"], config.get("activation"))  # fmt: skip
    norm, rng = run.norm, run.rng
    model = TorchModel(run.model)
    decayed = set(run.model.weight_names)
    named = dict(model.named_parameters())
    groups = [{"params": [p for n, p in named.items() if n in decayed], "weight_decay": 2 * config["weight_decay"]},
              {"params": [p for n, p in named.items() if n not in decayed], "weight_decay": 0.0}]  # fmt: skip
    if config.get("optimizer", "sgd") == "adam":
        optimizer = torch.optim.Adam(groups, lr=config["lr"])
    else:
        optimizer = torch.optim.SGD(groups, lr=config["lr"], momentum=config["momentum"],
                                    nesterov=bool(config.get("nesterov")))  # fmt: skip
    X = torch.from_numpy(norm.apply(flat(run.images)))
    y = torch.from_numpy(run.labels.astype(np.int64))
    n, bs = len(y), min(config["batch_size"], len(y))
    distortion = Distortion.from_config(config)
    distorter = Distorter(distortion, bs) if distortion.active else None
    pixels, distorted = flat(run.images), np.empty((bs, X.shape[1]), np.float32)
    smoothing = config.get("label_smoothing") or 0.0
    steps_per_epoch = math.ceil(n / bs)
    total = config["epochs"] * steps_per_epoch
    step, seconds = 0, []
    for epoch in range(config["epochs"]):
        started = time.perf_counter()
        order = rng.permutation(n)
        # As training.py: only runs with distortions draw the epoch's key, from the same generator.
        epoch_key = int(rng.integers(2**63)) if distorter else None
        for i in range(steps_per_epoch):
            idx = order[i * bs : (i + 1) * bs]
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config["schedule"], config["lr"], step, total)
            if distorter:
                moved = distorter(pixels[idx], batch_generator(epoch_key, i), distorted)
                xb = torch.from_numpy(norm.apply(moved))
            else:
                xb = X[torch.from_numpy(idx)]
            loss = torch.nn.functional.cross_entropy(model(xb), y[torch.from_numpy(idx)], label_smoothing=smoothing)
            optimizer.zero_grad(set_to_none=False)
            loss.backward()
            optimizer.step()
            step += 1
        seconds.append(time.perf_counter() - started)
        if on_epoch:
            on_epoch(epoch + 1, loss.item(), seconds[-1])
    with torch.no_grad():
        Xt = torch.from_numpy(norm.apply(flat(data.test.images)))
        predicted = model(Xt).argmax(dim=1).numpy()
    return model, seconds, float((predicted == data.test.labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="save the trained state dict here (torch.save), as train writes its checkpoint")
    args = parser.parse_args()
    config = resolve(args.config)  # train's defaults under the file, checked as train checks them
    if args.seed is not None:
        config["seed"] = args.seed
    data = datasets.load(args.dataset, args.data_dir)
    started = time.perf_counter()

    def report(epoch, loss, seconds):
        print(f"epoch {epoch}: last batch loss {loss:.4f}, {seconds:.1f}s")

    model, seconds, accuracy = train_torch(config, data, args.threads, on_epoch=report)
    if args.out:
        torch.save(model.state_dict(), args.out)
    total = time.perf_counter() - started
    print(
        f"pytorch {torch.__version__} {config['model']} {args.dataset} seed {config['seed']}: "
        f"test accuracy {100 * accuracy:.2f}%  training {sum(seconds):.2f}s  total {total:.1f}s"
    )


if __name__ == "__main__":
    main()
