"""Training throughput against the machine's GEMM throughput for the same shapes.

For a wide (MNIST, 784 features) and a narrow (crashes, 16 features) dataset, this
times a training step of ``VAETransformer`` at batch 512 with the default
architecture, through the public API only: ``fit`` with a fixed ``max_iter`` and
``early_stopping=False``, the time of an epoch being the difference between fits
of ``1 + --epochs`` and of one epoch over ``--epochs`` (everything else in a fit is
the same work), and a step that over the steps per epoch (``common.
training_throughput``). In the same process it times the bare matrix products that
one step needs: for every linear layer the forward product and the two backward
ones (the gradient of the input is skipped where the input needs none, as autograd
does). The ratio of the two times is the share of the measured GEMM throughput that
training reaches; the rest is per-step overhead (elementwise kernels, autograd, the
optimiser, Python).

Run::

    python benchmarks/throughput.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    environment,
    load_features,
    markdown_table,
    save_results,
    training_throughput,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="mnist,crashes")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-components", type=int, default=10)
    parser.add_argument("--mnist-rows", type=int, default=20_000)
    args = parser.parse_args()
    rows = []
    for name in args.datasets.split(","):
        X = load_features(name, args.mnist_rows if name == "mnist" else None)
        row = training_throughput(
            name, X, args.batch_size, args.epochs, args.n_components
        )
        print(json.dumps(row), flush=True)
        rows.append(row)
    lines = [
        "# Training throughput against GEMM throughput",
        "",
        f"Default architecture (256, 128), {args.n_components} latents, batch "
        f"{args.batch_size}. Step: seconds per epoch of `VAETransformer.fit` (fits "
        f"of {1 + args.epochs} and of 1 epochs, differenced) over the steps per "
        "epoch. GEMM: the same step's matrix products timed alone, best of 5. "
        f"Goal: ratio >= 0.5. Environment: {environment()}.",
        "",
    ]
    lines += markdown_table(
        [
            "dataset",
            "rows x features",
            "step ms",
            "GEMM ms",
            "train GFLOP/s",
            "GEMM GFLOP/s",
            "ratio",
        ],
        [
            [
                r["dataset"],
                f"{r['rows']} x {r['features']}",
                r["step_ms"],
                r["gemm_ms"],
                r["train_gflops"],
                r["gemm_gflops"],
                r["ratio"],
            ]
            for r in rows
        ],
        "lllllll",
    )
    save_results("throughput", rows, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
