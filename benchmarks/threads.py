"""Torch threads sized to the work (issue 18, section 1): ``make threads``.

Fit time of four problems at 1, 2 and ``n_threads="auto"`` torch threads, on an
idle machine and with one core kept busy by another process (a Python loop):

- digits: 1,797 rows x 64 pixels, 60 epochs;
- a 1k-row table: 1,000 rows x 12 numeric columns from a 3-D latent, 150 epochs;
- a 100k-row table: the same generator, 100,000 rows, 3 epochs;
- MNIST: 60,000 images x 784 pixels, 1 epoch.

Every fit has the default network and batch size, ``early_stopping=False`` and a
fixed number of epochs, so that the cells of a row do the same work. A first fit
warms the process up; then each cell is the best of ``REPEATS`` fits, taken in
turn, the order rotating (1, 2, auto, then 2, auto, 1, ...) so that a drift of the
machine's speed, or what one fit leaves behind for the next, touches every
setting alike. The report gives seconds, each cell's ratio to the
best of its row, and the threads ``"auto"`` chose. The goal: ``"auto"`` is the
best or within 10% of the best in every row.

Results: benchmarks/results/threads.{md,json}. About 10 minutes on 2 cores; run
it on an otherwise idle machine.
"""

from __future__ import annotations

import subprocess
import sys
import time
import warnings

import numpy as np
import torch
from common import environment, load_features, load_mnist, markdown_table, save_results

from skvae import VAETransformer

REPEATS = 5
SETTINGS = (1, 2, "auto")


def table(n_rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_rows, 3))
    mixing = rng.normal(size=(3, 12))
    return np.tanh(latent) @ mixing + 0.1 * rng.normal(size=(n_rows, 12))


def problems():
    yield "digits", load_features("digits"), 60
    yield "table 1k", table(1_000), 150
    yield "table 100k", table(100_000), 3
    yield "MNIST", load_mnist()[0].astype(np.float64), 1


def fit_seconds(X: np.ndarray, epochs: int, n_threads) -> tuple[float, int]:
    """Wall time of one fit, and the threads its training used."""
    vae = VAETransformer(
        8, max_iter=epochs, early_stopping=False, n_threads=n_threads, random_state=0
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: few epochs
        vae.fit(X)
    return time.perf_counter() - start, vae.n_threads_


def run(load: str) -> list[dict]:
    rows = []
    for name, X, epochs in problems():
        cells = {s: (np.inf, []) for s in SETTINGS}
        for r in range(REPEATS):
            for s in SETTINGS[r % 3 :] + SETTINGS[: r % 3]:  # each goes first
                seconds, used = fit_seconds(X, epochs, s)
                cells[s] = (min(cells[s][0], seconds), [*cells[s][1], used])
        best = min(seconds for seconds, _ in cells.values())
        row = {"problem": name, "load": load, "epochs": epochs}
        for setting, (seconds, _used) in cells.items():
            row[f"{setting}_s"] = seconds
            row[f"{setting}_ratio"] = seconds / best
        row["auto_threads"] = cells["auto"][1]  # in each repeat
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    torch.set_num_threads(2)  # the caller's setting: every core of this machine
    fit_seconds(load_features("digits"), 2, 1)  # warm-up: torch's first calls
    rows = run("idle")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        rows += run("one core busy")
    finally:
        spinner.kill()
        spinner.wait()
    lines = markdown_table(
        ["problem", "load", "1 thread", "2 threads", "auto", "auto chose"],
        [
            [
                r["problem"],
                r["load"],
                *(
                    f"{r[f'{s}_s']:.2f} s ({r[f'{s}_ratio']:.2f})"
                    for s in ("1", "2", "auto")
                ),
                "/".join(str(n) for n in r["auto_threads"]),
            ]
            for r in rows
        ],
        "llrrrr",
    )
    worst = max(r["auto_ratio"] for r in rows)
    report = "\n".join(
        [
            *lines,
            "",
            f"Seconds per fit, best of {REPEATS}; in brackets, the ratio to the best "
            f"cell of the row; the threads auto chose in each of the {REPEATS} fits. "
            f"auto's worst ratio: {worst:.2f} (goal: 1.10).",
            "",
            environment(),
        ]
    )
    print(report)
    save_results("threads", rows, report)


if __name__ == "__main__":
    main()
