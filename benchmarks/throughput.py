"""Training throughput against the machine's GEMM throughput for the same shapes.

For a wide (MNIST, 784 features) and a narrow (crashes, 16 features) dataset, this
times skvae's training step at batch 512 with the default architecture, and, in the
same process, the bare matrix products that one step needs: for every linear layer
the forward product and the two backward ones (the gradient of the input is skipped
where the input needs none, as autograd does). The ratio of the two times is the
share of the measured GEMM throughput that training reaches; the rest is per-step
overhead (elementwise kernels, autograd, the optimiser, Python).

Run::

    python benchmarks/throughput.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from datasets import load_features

from skvae._model import VAE, init_weights
from skvae._training import train_epoch

RESULTS = Path(__file__).parent / "results"


def gemm_shapes(module: VAE, batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of every matrix product in one training step of ``module``."""
    first = {id(module.encoder.linear), id(module.encoder.hidden[0])}
    shapes = []
    for layer in module.modules():
        if not isinstance(layer, nn.Linear):
            continue
        d_in, d_out = layer.in_features, layer.out_features
        shapes.append((batch, d_in, d_out))  # forward: x @ W.T
        shapes.append((d_out, batch, d_in))  # weight gradient: g.T @ x
        if id(layer) not in first:
            shapes.append((batch, d_out, d_in))  # input gradient: g @ W
    return shapes


def time_gemms(shapes: list[tuple[int, int, int]], repeats: int) -> float:
    """Best-of-5 seconds for one pass over ``shapes``, each product run alone."""
    pairs = [(torch.randn(m, k), torch.randn(k, n)) for m, k, n in shapes]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            for a, b in pairs:
                torch.mm(a, b)
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def measure(name: str, X: np.ndarray, batch: int, epochs: int, k: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    data = torch.tensor(StandardScaler().fit_transform(X), dtype=torch.float32)
    with torch.device("meta"):
        module = VAE(X.shape[1], k, (256, 128), "gaussian")
    module = module.to_empty(device="cpu")
    init_weights(module, generator)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, fused=True)
    steps = -(-data.shape[0] // batch)
    train_epoch(module, optimizer, data, batch, 1.0, generator).item()  # warm-up
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        train_epoch(module, optimizer, data, batch, 1.0, generator).item()
        times.append((time.perf_counter() - start) / steps)
    step = float(np.median(times))
    shapes = gemm_shapes(module, batch)
    gemm = time_gemms(shapes, repeats=max(5, int(0.5 / max(step, 1e-4))))
    flops = sum(2 * m * kk * n for m, kk, n in shapes)
    return {
        "dataset": name,
        "rows": data.shape[0],
        "features": X.shape[1],
        "batch": batch,
        "step_ms": round(1e3 * step, 3),
        "gemm_ms": round(1e3 * gemm, 3),
        "train_gflops": round(flops / step / 1e9, 2),
        "gemm_gflops": round(flops / gemm / 1e9, 2),
        "ratio": round(gemm / step, 3),
    }


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
        row = measure(name, X, args.batch_size, args.epochs, args.n_components)
        print(json.dumps(row), flush=True)
        rows.append(row)
    lines = [
        "# Training throughput against GEMM throughput",
        "",
        f"Default architecture (256, 128), {args.n_components} latents, batch "
        f"{args.batch_size}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}. GEMM: the same step's matrix products timed "
        "alone, best of 5. Goal: ratio >= 0.5.",
        "",
        "| dataset | rows x features | step ms | GEMM ms | train GFLOP/s | "
        "GEMM GFLOP/s | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['dataset']} | {r['rows']} x {r['features']} | {r['step_ms']} | "
        f"{r['gemm_ms']} | {r['train_gflops']} | {r['gemm_gflops']} | {r['ratio']} |"
        for r in rows
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(rows, indent=1) + "\n")
    (RESULTS / "throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
