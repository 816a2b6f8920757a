"""How skvae scales with the rows: in memory, streamed from parquet, on a cluster.

Synthetic tables with a nonlinear structure (5 latent factors through a random
tanh layer into 50 columns of different scales, plus noise), written to parquet by
this script (files of 500,000 rows) at 10k, 100k, 1M and 10M rows, and a mixed-type
variant (40 numeric, 5 boolean and 5 categorical columns with 4 levels, 5% of the
entries missing at random). Every cell runs in its own process, so that its peak
resident memory (the process and its children, sampled every 50 ms) is its own:

- ``vae-memory``: ``pd.read_parquet`` then ``VAETransformer(n_components=8).fit``
  with default settings (up to 1M rows);
- ``vae-stream``: the same fit on ``dask.dataframe.read_parquet``: partitions are
  streamed, the table is never in memory;
- ``ipca-stream``: ``IncrementalPCA(8).partial_fit`` over the same files, batch by
  batch (the linear out-of-core anchor; numeric variant);
- ``pca-memory``: ``PCA(8)`` on the table in memory (up to 1M rows, numeric).

Measured: fit seconds, epochs and evaluation periods, fit rows per second (rows
through the optimizer, from the fitted attributes, divided by the seconds of the
whole ``fit`` call, set-up included; an earlier version timed the training epochs
alone from inside skvae), the held-out log-likelihood on 10,000 fresh rows (the
VAE's ELBO, ``score``, against probabilistic PCA's exact log-likelihood, both in
nats per row in the data's units), and peak memory (``common.PeakMemory``). Then,
on the largest table, ``transform`` throughput: one process reading the files one
by one, against a 2-worker ``LocalCluster`` (one thread each) running the lazy
``transform`` of the dask DataFrame. And the share of this machine's GEMM
throughput that training reaches at the batch sizes ``batch_size="auto"`` picks
for 1M and 10M rows (``common.training_throughput``).

Usage::

    python benchmarks/scale.py                  # everything (~40 minutes on 2 cores)
    python benchmarks/scale.py --max-rows 100k  # a quick look

Results: benchmarks/results/scale.{md,json,png}. Data: benchmarks/.data/scale/
(git-ignored; about 2.5 GB at 10M rows, rewritten only when missing).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    RESULTS,
    PeakMemory,
    auto_batch_size,
    environment,
    markdown_table,
    training_throughput,
)

HERE = Path(__file__).parent
DATA = HERE / ".data" / "scale"
SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000, "10M": 10_000_000}
FILE_ROWS = 500_000
TEST_ROWS = 10_000
N_LATENT, N_HIDDEN, N_COLUMNS, K = 5, 64, 50, 8
IN_MEMORY_MAX = 1_000_000
METHODS = ("vae-memory", "vae-stream", "ipca-stream", "pca-memory")


# -- data -----------------------------------------------------------------------------
def _world() -> dict[str, np.ndarray]:
    """The fixed generator every file shares: weights of the tanh layer and scales."""
    rng = np.random.default_rng(12345)
    n_out = N_COLUMNS + 5 * 4  # numeric columns, and logits for the categories
    return {
        "A": rng.normal(size=(N_LATENT, N_HIDDEN)),
        "b": rng.normal(scale=0.5, size=N_HIDDEN),
        "B": rng.normal(size=(N_HIDDEN, n_out)) / math.sqrt(N_HIDDEN),
        "scale": np.exp(rng.normal(size=n_out)),
        "shift": rng.normal(scale=3, size=n_out),
    }


def make_table(n_rows: int, seed: int, mixed: bool) -> pd.DataFrame:
    """``n_rows`` rows of the numeric or mixed table, drawn with ``seed``."""
    world = _world()
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n_rows, N_LATENT))
    signal = np.tanh(z @ world["A"] + world["b"]) @ world["B"]
    signal += 0.1 * rng.normal(size=signal.shape)
    values = (signal * world["scale"] + world["shift"]).astype(np.float32)
    if not mixed:
        return pd.DataFrame(values[:, :N_COLUMNS], columns=_names(N_COLUMNS))
    frame = pd.DataFrame(values[:, :40], columns=_names(40))
    for j in range(5):
        frame[f"b{j}"] = pd.array(signal[:, 40 + j] > 0, dtype="boolean")
    for j in range(5):
        logits = signal[:, 50 + 4 * j : 54 + 4 * j]
        codes = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
        frame[f"c{j}"] = pd.Categorical.from_codes(codes, list("abcd"))
    holes = rng.random(frame.shape) < 0.05
    for j, column in enumerate(frame.columns):
        frame.loc[holes[:, j], column] = None
    return frame


def _names(n: int) -> list[str]:
    return [f"x{j}" for j in range(n)]


def data_dir(variant: str, size: str) -> Path:
    return DATA / f"{variant}-{size}"


def ensure_data(variant: str, size: str) -> Path:
    """Write the table's parquet files (and the test file) unless they exist."""
    mixed = variant == "mixed"
    test = DATA / f"{variant}-test.parquet"
    if not test.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        make_table(TEST_ROWS, seed=10**6, mixed=mixed).to_parquet(test)
    path = data_dir(variant, size)
    done = path / "_done"
    if done.exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    n_rows = SIZES[size]
    for i, start in enumerate(range(0, n_rows, FILE_ROWS)):
        part = make_table(min(FILE_ROWS, n_rows - start), seed=i, mixed=mixed)
        part.to_parquet(path / f"part-{i:03d}.parquet", row_group_size=100_000)
    done.touch()
    return path


# -- one cell, in its own process -----------------------------------------------------
def rows_trained(vae, n_rows: int) -> float:
    """Rows through the optimizer in a fit on ``n_rows`` rows, from its attributes.

    The training rows (all but the held-out ``validation_fraction``, at most
    10,000 rows, with early stopping) times the epochs run, the last one possibly
    in part: ``loss_curve_`` has an entry per evaluation period (an epoch, or part
    of one on more than 2**20 rows) and ``n_iter_`` counts the epochs begun.
    """
    held = 0
    if vae.early_stopping:
        held = min(round(vae.validation_fraction * n_rows), 10_000)
    periods = len(vae.loss_curve_)
    per_epoch = math.ceil(periods / vae.n_iter_)
    return (n_rows - held) * periods / per_epoch


def ppca_loglik(model, X: np.ndarray) -> float:
    """Mean log-likelihood of rows ``X`` under a fitted (Incremental)PCA's PPCA."""
    precision = model.get_precision()
    centred = X - model.mean_
    _, logdet = np.linalg.slogdet(precision)
    quad = np.einsum("ij,jk,ik->i", centred, precision, centred)
    return float(np.mean(-0.5 * (quad + X.shape[1] * math.log(2 * math.pi) - logdet)))


def run_cell(variant: str, size: str, method: str) -> dict:
    import torch

    threads = torch.get_num_threads()
    row: dict = {"variant": variant, "size": size, "rows": SIZES[size]}
    row["method"], row["torch_threads"] = method, threads
    with PeakMemory(interval=0.05, children=True) as memory:
        _run_cell(variant, size, method, row)
    row["peak_mb"] = memory.peak_mb
    return row


def _run_cell(variant: str, size: str, method: str, row: dict) -> None:
    """Fit, score or transform as ``method`` says, adding the measures to ``row``."""
    path = data_dir(variant, size)
    test = pd.read_parquet(DATA / f"{variant}-test.parquet")
    files = sorted(path.glob("part-*.parquet"))
    start = time.perf_counter()
    if method in ("vae-memory", "vae-stream"):
        from skvae import VAETransformer

        if method == "vae-memory":
            X = pd.read_parquet(path)
        else:
            import dask
            import dask.dataframe as dd

            dask.config.set(scheduler="threads")
            X = dd.read_parquet(str(path / "part-*.parquet"))
        vae = VAETransformer(n_components=K, random_state=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            vae.fit(X)
        row["fit_s"] = time.perf_counter() - start
        row["epochs"], row["periods"] = vae.n_iter_, len(vae.loss_curve_)
        row["batch"] = auto_batch_size(SIZES[size])
        row["fit_rows_per_s"] = rows_trained(vae, SIZES[size]) / row["fit_s"]
        row["converged"] = not any("max_iter" in str(w.message) for w in caught)
        row["loglik"] = vae.score(test)
        if method == "vae-stream":  # for the transform cells
            with open(DATA / f"model-{variant}-{size}.pkl", "wb") as f:
                pickle.dump(vae, f)
    elif method == "ipca-stream":
        import pyarrow.parquet as pq
        from sklearn.decomposition import IncrementalPCA

        model = IncrementalPCA(n_components=K)
        for file in files:
            for batch in pq.ParquetFile(file).iter_batches(batch_size=100_000):
                model.partial_fit(batch.to_pandas().to_numpy(np.float64))
        row["fit_s"] = time.perf_counter() - start
        # IncrementalPCA sets noise_variance_ from the last batch's residual alone;
        # PPCA's is the mean variance outside the components, from all the rows.
        n, dim = model.n_samples_seen_, model.n_features_in_
        total = model.var_.sum() * n / (n - 1)
        model.noise_variance_ = (total - model.explained_variance_.sum()) / (dim - K)
        row["loglik"] = ppca_loglik(model, test.to_numpy(np.float64))
    elif method == "pca-memory":
        from sklearn.decomposition import PCA

        X = pd.read_parquet(path).to_numpy(np.float64)
        model = PCA(n_components=K, random_state=0).fit(X)
        row["fit_s"] = time.perf_counter() - start
        row["loglik"] = float(model.score(test.to_numpy(np.float64)))
    elif method in ("transform-process", "transform-cluster"):
        row.update(_transform(variant, size, files, method))


def _transform(variant: str, size: str, files: list[Path], method: str) -> dict:
    with open(DATA / f"model-{variant}-{size}.pkl", "rb") as f:
        vae = pickle.load(f)
    start = time.perf_counter()
    if method == "transform-process":
        import pyarrow.parquet as pq

        total, n = 0.0, 0
        for file in files:
            for batch in pq.ParquetFile(file).iter_batches(batch_size=100_000):
                frame = batch.to_pandas()
                total += float(vae.transform(frame).sum())
                n += len(frame)
    else:
        import dask.dataframe as dd
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster),
        ):
            lazy = dd.read_parquet([str(f) for f in files])
            start = time.perf_counter()  # the cluster's start-up is not transform
            Z = vae.transform(lazy)
            total, n = float(np.sum(Z.sum().compute())), SIZES[size]
    seconds = time.perf_counter() - start
    return {"fit_s": seconds, "transform_rows_per_s": n / seconds, "checksum": total}


def run_gemm() -> dict:
    """Training's share of GEMM throughput at the auto batches for 1M and 10M rows."""
    batches = (256, auto_batch_size(900_000), auto_batch_size(9_000_000))
    X = make_table(200_000, seed=7, mixed=False).to_numpy(np.float64)
    out = {}
    for b in batches:
        out[b] = training_throughput("scale", X, b, epochs=2, k=K)
    return {"method": "gemm", "rows": {str(b): r for b, r in out.items()}}


# -- the whole benchmark --------------------------------------------------------------
def cells(
    max_rows: int, variants: list[str], methods: list[str]
) -> list[tuple[str, str, str]]:
    out = []
    for variant in variants:
        for size, n in SIZES.items():
            if n > max_rows:
                continue
            for method in METHODS:
                if variant == "mixed" and method in ("ipca-stream", "pca-memory"):
                    continue  # linear baselines need complete numeric data
                if method.endswith("memory") and n > IN_MEMORY_MAX:
                    continue
                out.append((variant, size, method))
    largest = max((s for s, n in SIZES.items() if n <= max_rows), key=SIZES.get)
    if "numeric" in variants:
        for method in ("transform-process", "transform-cluster"):
            out.append(("numeric", largest, method))
    return [cell for cell in out if cell[2] in methods]


def child(args: list[str]) -> dict:
    command = [sys.executable, __file__, "--cell", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"cell {args} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-rows", default="10M", choices=list(SIZES))
    parser.add_argument("--variants", default="numeric,mixed")
    parser.add_argument("--cell", nargs=3, metavar=("VARIANT", "SIZE", "METHOD"))
    parser.add_argument(
        "--methods",
        default=",".join((*METHODS, "transform-process", "transform-cluster")),
        help="comma-separated subset of the methods to run",
    )
    parser.add_argument("--skip-gemm", action="store_true")
    parser.add_argument("--gemm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        print(json.dumps(run_cell(*args.cell)))
        return
    if args.gemm:
        print(json.dumps(run_gemm()))
        return
    variants = args.variants.split(",")
    todo = cells(SIZES[args.max_rows], variants, args.methods.split(","))
    for variant in variants:
        for size, n in SIZES.items():
            if n <= SIZES[args.max_rows]:
                ensure_data(variant, size)
    # Cells of earlier runs are kept unless this run measures them again, so the
    # benchmark can be run in parts (--variants, --max-rows).
    saved = RESULTS / "scale.json"
    previous = json.loads(saved.read_text()) if saved.exists() else {}
    rows = [r for r in previous.get("cells", []) if _key(r) not in set(todo)]
    gemm = previous.get("gemm")
    for cell in todo:
        row = child(list(cell))
        print(json.dumps(row), flush=True)
        rows.append(row)
        _save(rows, gemm)
    if not args.skip_gemm:
        gemm = child_gemm()
        print(json.dumps(gemm), flush=True)
    _save(rows, gemm)
    plot(rows, RESULTS / "scale.png")
    print(report(rows, gemm))


def _key(row: dict) -> tuple[str, str, str]:
    return row["variant"], row["size"], row["method"]


def _save(rows: list[dict], gemm: dict | None) -> None:
    order = {m: i for i, m in enumerate((*METHODS, "transform-process"))}
    rows.sort(key=lambda r: (r["variant"], SIZES[r["size"]], order.get(r["method"], 9)))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale.json").write_text(
        json.dumps({"cells": rows, "gemm": gemm}, indent=1) + "\n"
    )
    (RESULTS / "scale.md").write_text(report(rows, gemm))


def child_gemm() -> dict:
    command = [sys.executable, __file__, "--gemm"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(rows: list[dict], gemm: dict) -> str:
    lines = [
        "# Scale: rows from 10k to 10M",
        "",
        f"k={K}, default settings otherwise. One process per cell; peak MB is the "
        "resident memory of the process and its children. fit rows/s: rows through "
        "the optimizer over the seconds of the whole fit. loglik: held-out nats per "
        "row on 10,000 fresh rows (VAE: ELBO; PCA: exact PPCA log-likelihood). "
        "Reproduce: `python benchmarks/scale.py`. Environment: "
        + environment("pandas", "dask", "distributed", "pyarrow")
        + ".",
        "",
    ]
    fits = [
        [
            r["variant"],
            r["size"],
            r["method"],
            f"{r['fit_s']:.1f}",
            r.get("epochs", ""),
            r.get("periods", ""),
            r.get("batch", ""),
            f"{r['fit_rows_per_s']:,.0f}" if "fit_rows_per_s" in r else "",
            f"{r['loglik']:.2f}",
            f"{r['peak_mb']:,.0f}",
        ]
        for r in rows
        if not r["method"].startswith("transform")
    ]
    header = ["variant", "rows", "method", "fit s", "epochs", "periods", "batch"]
    header += ["fit rows/s", "loglik", "peak MB"]
    lines += markdown_table(header, fits, "lrlrrrrrrr")
    lines += ["", "## Transform on the largest table", ""]
    lines += markdown_table(
        ["method", "seconds", "rows/s", "peak MB"],
        [
            [
                f"{r['method']} ({r['size']})",
                f"{r['fit_s']:.1f}",
                f"{r['transform_rows_per_s']:,.0f}",
                f"{r['peak_mb']:,.0f}",
            ]
            for r in rows
            if r["method"].startswith("transform")
        ],
        "lrrr",
    )
    lines += ["", "## Training against GEMM throughput (50 columns, k=8)", ""]
    lines += markdown_table(
        ["batch", "step ms", "GEMM ms", "ratio"],
        [
            [b, r["step_ms"], r["gemm_ms"], r["ratio"]]
            for b, r in (gemm or {"rows": {}})["rows"].items()
        ],
        "rrrr",
    )
    lines += ["", *summary(rows)]
    return "\n".join(lines) + "\n"


def summary(rows: list[dict]) -> list[str]:
    """Ratios the goals are stated in, from the cells of this run."""
    get = {(r["variant"], r["size"], r["method"]): r for r in rows}
    out = ["## Ratios", ""]
    for variant in ("numeric", "mixed"):
        for size in SIZES:
            memory = get.get((variant, size, "vae-memory"))
            stream = get.get((variant, size, "vae-stream"))
            # Cells saved by the earlier version have train_rows_per_s instead.
            if memory and stream and "fit_rows_per_s" in memory.keys() & stream:
                rate = stream["fit_rows_per_s"] / memory["fit_rows_per_s"]
                out.append(
                    f"- {variant} {size}: streaming fits at {rate:.2f}x "
                    "the in-memory rows/s; fit time "
                    f"{stream['fit_s'] / memory['fit_s']:.2f}x; peak memory "
                    f"{stream['peak_mb'] / memory['peak_mb']:.2f}x."
                )
    one = get.get(("numeric", "1M", "vae-memory"))
    big = get.get(("numeric", "10M", "vae-stream"))
    if one and big:
        out.append(
            f"- streaming 10M rows peaks at {big['peak_mb']:,.0f} MB, "
            f"{big['peak_mb'] / one['peak_mb']:.2f}x holding 1M in memory."
        )
    process = next((r for r in rows if r["method"] == "transform-process"), None)
    cluster = next((r for r in rows if r["method"] == "transform-cluster"), None)
    if process and cluster:
        out.append(
            "- transform on a 2-worker LocalCluster: "
            f"{cluster['transform_rows_per_s'] / process['transform_rows_per_s']:.2f}x "
            "the rows/s of one process."
        )
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for (variant, method), style in {
        ("numeric", "vae-memory"): "o-",
        ("numeric", "vae-stream"): "s-",
        ("numeric", "ipca-stream"): "^--",
        ("numeric", "pca-memory"): "v--",
        ("mixed", "vae-memory"): "o:",
        ("mixed", "vae-stream"): "s:",
    }.items():
        cells = [r for r in rows if (r["variant"], r["method"]) == (variant, method)]
        if not cells:
            continue
        x = [r["rows"] for r in cells]
        label = f"{method} ({variant})"
        axes[0].plot(x, [r["fit_s"] for r in cells], style, label=label)
        axes[1].plot(x, [r["peak_mb"] for r in cells], style, label=label)
    for ax, title in zip(axes, ("fit time (s)", "peak memory (MB)"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("skvae at scale: 50 columns, k=8, 2 cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
