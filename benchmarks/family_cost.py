"""What a training epoch costs with each column family, on images and tables.

Under ``families="auto"`` most pixels of digits and MNIST are point masses
(censored at 0, and at the top of the scale for MNIST's): each entry at a mass
costs a Gaussian tail probability, log Phi, in training. The whole-number
columns of a table are discrete: each entry costs a bin's probability, a
difference of two Phi. This measures that cost against the plain Gaussian
(``families="gaussian"``) in the same run, k=2, early stopping off, on the
suite's split of the images (``common.load_split``; MNIST: 10,000 training
rows) and on the training rows of two tables of ``make synthesis``
(``synthesis.split``, 70%): diamonds (5,000 rows; ``price`` discrete) and
credit (``reports``, ``dependents``, ``months`` and ``active`` discrete,
``expenditure`` with a point mass at 0):

- seconds per epoch: a fit of ``2 + E`` epochs minus one of 2, over ``E`` (6
  on MNIST, 40 to 60 on the others: ``DATASETS``), so that the set-up
  (codec, PCA start, float64 copy) cancels;
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
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import environment, load_split, save_report

from skvae import VAETransformer

# name -> ((max training rows, max test rows) of the suite's split, or None for
# a table of ``make synthesis``; the epochs timed). An epoch of a small table
# takes some 0.05 s: its difference is timed over more epochs than MNIST's.
DATASETS = {
    "digits": ((None, None), 40),
    "mnist": ((10_000, 2_000), 6),
    "diamonds": (None, 40),
    "credit": (None, 60),
}
FAMILIES = ("gaussian", "auto")
REPEATS = 5
TITLE = "What a training epoch costs with each column family"


def fit_seconds(X: np.ndarray, family: str, epochs: int) -> float:
    vae = VAETransformer(
        2, families=family, max_iter=epochs, early_stopping=False, random_state=0
    )
    start = time.perf_counter()
    vae.fit(X)
    return time.perf_counter() - start


def training_rows(name: str) -> np.ndarray | pd.DataFrame:
    split = DATASETS[name][0]
    if split is not None:
        return load_split(name, *split)[0]
    from synthesis import load, split

    return split(load(name))[0]


def measure(name: str) -> dict:
    X = training_rows(name)
    epochs = DATASETS[name][1]
    fit_seconds(X[:200], "auto", 1)  # warm up (first calls into torch)
    rounds = []
    for _ in range(REPEATS):
        figures = {}
        for family in FAMILIES:
            short = fit_seconds(X, family, 2)
            long = fit_seconds(X, family, 2 + epochs)
            epoch = (long - short) / epochs
            figures[family] = {"epoch_s": epoch, "setup_s": short - 2 * epoch}
        rounds.append(figures)
    cell = {
        "dataset": name,
        "rows": len(X),
        "columns": X.shape[1],
        "epochs": epochs,
        "rounds": rounds,
    }
    for family in FAMILIES:
        for key in ("epoch_s", "setup_s"):
            cell[f"{key} {family}"] = float(np.median([r[family][key] for r in rounds]))
    cell["epoch ratio"] = float(
        np.median([r["auto"]["epoch_s"] / r["gaussian"]["epoch_s"] for r in rounds])
    )
    families = VAETransformer(2, max_iter=1, random_state=0).fit(X[:2000])
    for family in ("point_mass", "discrete"):
        chosen = families.column_likelihoods_ == family
        cell[f"{family} columns"] = int(chosen.sum())
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
            str(c["epochs"]),
            str(c["point_mass columns"]),
            str(c["discrete columns"]),
            *(f"{c[f'epoch_s {f}']:.3f}" for f in FAMILIES),
            f"{c['epoch ratio']:.2f}",
            *(f"{c[f'setup_s {f}']:.2f}" for f in FAMILIES),
        ]
        for c in results["cells"]
    ]
    header = [
        "dataset",
        "training rows x columns",
        "epochs",
        "point-mass columns (auto)",
        "discrete columns (auto)",
        *(f"s/epoch {f}" for f in FAMILIES),
        "epoch ratio auto / gaussian",
        *(f"set-up s {f}" for f in FAMILIES),
    ]
    explanation = (
        "k=2, early stopping off. Seconds per epoch: a fit of 2 + E epochs "
        "minus one of 2, over E (the epochs column); set-up: the 2-epoch fit "
        f"minus two epochs. Medians of {REPEATS} rounds with the families "
        "interleaved; the ratio is the median of the rounds' ratios. The "
        "absolute seconds vary 2x between machines of this kind: compare the "
        "ratio."
    )
    table = (header, rows, "ll" + "r" * 8)
    print(save_report("family_cost", results, TITLE, explanation, table))


if __name__ == "__main__":
    main()
