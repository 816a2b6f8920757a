"""What a training epoch costs with each column family, on images.

Under ``families="auto"`` most pixels of digits and MNIST are point masses
(censored at 0, and at the top of the scale for MNIST's): each entry at a mass
costs a Gaussian tail probability, log Phi, in training. This measures that
cost against the plain Gaussian (``families="gaussian"``) in the same run, on
the suite's split (``common.load_split``; MNIST: 10,000 training rows), k=2,
early stopping off:

- seconds per epoch: a fit of ``2 + EPOCHS`` epochs minus one of 2, over
  ``EPOCHS``, so that the set-up (codec, PCA start, float64 copy) cancels;
- set-up seconds: the fit of 2 epochs minus two epochs;
- each figure the median of ``REPEATS`` rounds, the families interleaved in
  each round, and the ratio auto / gaussian the median of the rounds' ratios.

Run it with ``python benchmarks/family_cost.py`` (about four minutes on 2
cores); results in ``results/family_cost.md`` and ``.json``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import environment, load_split, save_report

from skvae import VAETransformer

DATASETS = {"digits": (None, None), "mnist": (10_000, 2_000)}
FAMILIES = ("gaussian", "auto")
EPOCHS = 6
REPEATS = 3
TITLE = "What a training epoch costs with each column family"


def fit_seconds(X: np.ndarray, family: str, epochs: int) -> float:
    vae = VAETransformer(
        2, families=family, max_iter=epochs, early_stopping=False, random_state=0
    )
    start = time.perf_counter()
    vae.fit(X)
    return time.perf_counter() - start


def measure(name: str) -> dict:
    X = load_split(name, *DATASETS[name])[0]
    fit_seconds(X[:200], "auto", 1)  # warm up (first calls into torch)
    rounds = []
    for _ in range(REPEATS):
        figures = {}
        for family in FAMILIES:
            short = fit_seconds(X, family, 2)
            long = fit_seconds(X, family, 2 + EPOCHS)
            epoch = (long - short) / EPOCHS
            figures[family] = {"epoch_s": epoch, "setup_s": short - 2 * epoch}
        rounds.append(figures)
    cell = {"dataset": name, "rows": len(X), "columns": X.shape[1], "rounds": rounds}
    for family in FAMILIES:
        for key in ("epoch_s", "setup_s"):
            cell[f"{key} {family}"] = float(np.median([r[family][key] for r in rounds]))
    cell["epoch ratio"] = float(
        np.median([r["auto"]["epoch_s"] / r["gaussian"]["epoch_s"] for r in rounds])
    )
    masses = VAETransformer(2, max_iter=1, random_state=0).fit(X[:2000])
    cell["point_mass columns"] = int((masses.column_likelihoods_ == "point_mass").sum())
    return cell


def main() -> None:
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")
    results = {"environment": environment(), "cells": []}
    for name in DATASETS:
        cell = measure(name)
        results["cells"].append(cell)
        print({k: v for k, v in cell.items() if k != "rounds"}, flush=True)
    rows = [
        [
            c["dataset"],
            f"{c['rows']:,} x {c['columns']}",
            str(c["point_mass columns"]),
            *(f"{c[f'epoch_s {f}']:.3f}" for f in FAMILIES),
            f"{c['epoch ratio']:.2f}",
            *(f"{c[f'setup_s {f}']:.2f}" for f in FAMILIES),
        ]
        for c in results["cells"]
    ]
    header = [
        "dataset",
        "training rows x columns",
        "point-mass columns (auto)",
        *(f"s/epoch {f}" for f in FAMILIES),
        "epoch ratio auto / gaussian",
        *(f"set-up s {f}" for f in FAMILIES),
    ]
    explanation = (
        f"k=2, early stopping off. Seconds per epoch: a fit of {2 + EPOCHS} "
        f"epochs minus one of 2, over {EPOCHS}; set-up: the 2-epoch fit minus "
        f"two epochs. Medians of {REPEATS} rounds with the families "
        "interleaved; the ratio is the median of the rounds' ratios. The "
        "absolute seconds vary 2x between machines of this kind: compare the "
        "ratio."
    )
    table = (header, rows, "ll" + "r" * 6)
    print(save_report("family_cost", results, TITLE, explanation, table))


if __name__ == "__main__":
    main()
