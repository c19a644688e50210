"""Fuzz every reader of untrusted bytes (tests/fuzz_targets.py) and keep what fails.

    python scripts/fuzz.py [--seconds 60] [--target checkpoint ...] [--seed 0]

Each target's inputs are its seeds (valid files and requests), mutated (bits flipped, bytes
inserted, deleted, repeated, spliced with another input, a number in a header replaced), and, for
the targets with a strategy over their format, inputs hypothesis builds (npz files of generated
NPY members, JSON requests of any shape). Every input runs under a time limit (5 s) and the whole
process under an address-space limit (8 GiB): a hang, an allocation that fails, an exception that
is not the reader's one-line error, a 500 or a non-finite answer is a failure, written to
tests/corpus/TARGET/ (which tests/test_fuzz.py replays) and printed. A table at the end gives the
executions, failures and time of each target.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz_targets import CORPUS, TARGETS  # noqa: E402

TIME_LIMIT_S = 5
MEMORY_LIMIT = 8 << 30


class TimeLimit(Exception):
    pass


def _alarm(signum, frame):
    raise TimeLimit(f"more than {TIME_LIMIT_S} s")


def mutate(data: bytes, pool: list[bytes], rng: random.Random) -> bytes:
    """One to four random edits of data."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        at = rng.randrange(len(out) + 1)
        if choice < 0.3 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif choice < 0.45:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif choice < 0.6 and out:
            del out[at : at + rng.randint(1, 64)]
        elif choice < 0.7 and out:
            chunk = out[at : at + rng.randint(1, 256)]
            out[at:at] = chunk * rng.randint(1, 64)
        elif choice < 0.8:
            other = rng.choice(pool)
            out = out[:at] + other[rng.randrange(len(other) + 1) :]
        elif choice < 0.9 and len(out) >= 4:  # a 32-bit number (an IDX dimension, a zip size) made extreme
            value = rng.choice([0, 1, 2**31 - 1, 2**32 - 1, rng.randrange(2**32)])
            at = min(at, len(out) - 4)
            out[at : at + 4] = value.to_bytes(4, rng.choice(["big", "little"]))
        else:
            digits = rng.choice([b"1e400", b"-1", b"NaN", b"1" + b"0" * 400, b'"', b"[" * 100, b"\\u0000", b"."])
            out[at:at] = digits
    return bytes(out[: 64 << 20])


def run(name: str, seconds: float, rng: random.Random) -> dict:
    target, seeds, structured = TARGETS[name]
    folder = CORPUS / name
    pool = seeds() + [p.read_bytes() for p in sorted(folder.glob("*"))]
    executions = failures = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if structured is not None and rng.random() < 0.3:
            data = structured(lambda strategy: strategy.example())
        else:
            data = mutate(rng.choice(pool), pool, rng)
        executions += 1
        signal.alarm(TIME_LIMIT_S)
        try:
            target(data)
        except BaseException as exc:  # noqa: BLE001 - every other outcome is the finding
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures += 1
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / hashlib.sha256(data).hexdigest()[:16]
            path.write_bytes(data)
            pool.append(data)
            where = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"{name}: {type(exc).__name__}: {str(exc)[:160]} ({Path(where.filename).name}:{where.lineno}) "
                  f"-> {path.relative_to(ROOT)}", flush=True)  # fmt: skip
        finally:
            signal.alarm(0)
    return {"target": name, "executions": executions, "failures": failures, "seconds": time.monotonic() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="per target")
    parser.add_argument("--target", nargs="*", choices=list(TARGETS), help="default: every one")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    signal.signal(signal.SIGALRM, _alarm)
    warnings.simplefilter("ignore")  # hypothesis's strategy.example() warns outside a test
    rng = random.Random(args.seed)
    rows = [run(name, args.seconds, rng) for name in args.target or TARGETS]
    print(f"\n{'target':<12} {'executions':>10} {'failures':>8} {'seconds':>8} {'corpus':>7}")
    for r in rows:
        corpus = len(list((CORPUS / r["target"]).glob("*")))
        print(f"{r['target']:<12} {r['executions']:>10,} {r['failures']:>8} {r['seconds']:>8.0f} {corpus:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
