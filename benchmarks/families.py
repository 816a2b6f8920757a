"""Column families on arrays: the discrete family against Gaussians.

An array's columns carry no types, so ``families="auto"`` keeps their whole
numbers Gaussian. This measures what the discrete family would change, on the
suite's split (``common.load_split``: 75/25 stratified, seed 0):

- digits (whole numbers 0-16): held-out mean ELBO and the worst test row, in
  nats, with ``families="gaussian"`` and ``families="discrete"``;
- titanic and credit (0/1 and few-level columns among the numbers): the
  accuracy of a logistic regression on the latent, the suite's feature goal.

"discrete" asks for the discrete family on the whole-number columns only (the
others keep ``"auto"``); "gaussian" is ``families="gaussian"``.

Run it with ``python benchmarks/families.py`` (about two minutes on 2 cores);
results in ``results/families.md`` and ``.json``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from common import environment, load_split, save_report

from skvae import VAETransformer

CELLS = [("digits", k) for k in (2, 5, 10, 20)] + [("titanic", 2), ("credit", 2)]
FAMILIES = ("gaussian", "discrete")
TITLE = "Column families on arrays"


def measure(name: str, k: int, family: str) -> dict:
    X_train, X_test, y_train, y_test = load_split(name)
    if family == "discrete":  # the whole-number columns; the rest keep "auto"
        whole = np.all(X_train == np.round(X_train), axis=0)
        family = {int(j): "discrete" for j in np.flatnonzero(whole)}
    start = time.perf_counter()
    vae = VAETransformer(k, families=family, random_state=0).fit(X_train)
    fit_s = time.perf_counter() - start
    scores = vae.score_samples(X_test)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(vae.transform(X_train), y_train)
    return {
        "elbo": float(scores.mean()),
        "worst_row": float(scores.min()),
        "rows_below_-1000": int((scores < -1000).sum()),
        "accuracy": float(clf.score(vae.transform(X_test), y_test)),
        "fit_s": fit_s,
    }


def main() -> None:
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")
    results = {"environment": environment(), "cells": []}
    for name, k in CELLS:
        cell = {"dataset": name, "k": k}
        for family in FAMILIES:
            cell[family] = measure(name, k, family)
        results["cells"].append(cell)
        print(cell, flush=True)
    rows = [
        [
            c["dataset"],
            str(c["k"]),
            *(f"{c[f]['elbo']:.1f}" for f in FAMILIES),
            *(f"{c[f]['worst_row']:,.0f}" for f in FAMILIES),
            *(f"{c[f]['accuracy']:.3f}" for f in FAMILIES),
            *(f"{c[f]['fit_s']:.1f}" for f in FAMILIES),
        ]
        for c in results["cells"]
    ]
    header = [
        "dataset",
        "k",
        *(f"ELBO {f}" for f in FAMILIES),
        *(f"worst row {f}" for f in FAMILIES),
        *(f"accuracy {f}" for f in FAMILIES),
        *(f"fit s {f}" for f in FAMILIES),
    ]
    explanation = (
        "Held-out mean ELBO and worst test row (nats; a probability per whole "
        "number for discrete, a density per unit for gaussian, which compare "
        "directly on whole numbers), and the test accuracy of a logistic "
        "regression on the latent. Suite split, seed 0."
    )
    table = (header, rows, "lr" + "r" * 8)
    print(save_report("families", results, TITLE, explanation, table))


if __name__ == "__main__":
    main()
