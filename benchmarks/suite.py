"""skvae against PCA on real data: accuracy, reconstruction, log-likelihood, cost.

For each dataset (75/25 stratified split, seed 0) and latent size k, the suite fits
VAETransformer with default settings (only n_components and random_state set) and
PCA, and measures on the held-out rows:

- acc: test accuracy of StandardScaler + LogisticRegression on the k features (raw
  features as a reference);
- rec: reconstruction mean squared error, in units of each feature's training
  standard deviation (so 1.0 is as bad as predicting the mean);
- loglik: mean log-likelihood per row in nats, in the data's own units: PCA.score
  (probabilistic PCA) against the VAE's ELBO (``score``) and its importance-weighted
  bound (Burda et al. 2016) with K samples;
- cost: fit seconds, epochs, transform rows/s, peak resident memory added by fit.

PCA gets its best footing: it is fitted on the raw and on the standardised matrix and
each metric keeps the better of the two (log-likelihoods converted to raw units).

Usage::

    python benchmarks/suite.py --quick   # < 2 minutes on 2 cores; prints the table
    python benchmarks/suite.py --full    # every dataset, k in 2, 5, 10, 20; plots

With ``--save``, results go to benchmarks/results/<mode>.md and .json (and PNG plots
in full mode). Datasets, the plan of each mode (``MODES``), the IWAE bound and the
memory measurement come from ``common.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    MODES,
    RESULTS,
    PeakMemory,
    iwae_bound,
    load_split,
    markdown_table,
    save_results,
)

from skvae import VAETransformer

IWAE_SAMPLES = {"quick": 100, "full": 1000}
DENSITIES = (
    "masses: the default fit's point-mass columns, whose entries at a mass score "
    "a probability, which PCA's density does not compare with (the user guide's "
    "likelihoods page); where there are any, (b) compares PCA with a fit with "
    'families="gaussian" (IWAE gaussian), a density for every entry as PCA\'s.'
)


@dataclass
class Cell:
    dataset: str
    k: int
    n_train: int
    n_features: int
    acc_raw: float
    acc_pca: float
    acc_vae: float
    rec_pca: float
    rec_vae: float
    ll_pca: float
    elbo_vae: float
    iwae_vae: float
    pca_degenerate: bool
    fit_s: float
    epochs: int
    s_per_epoch: float
    transform_rows_s: float
    peak_mb: float
    active_units: int
    kl_per_component: list = field(default_factory=list)
    # the lowest held-out row's ELBO (nats), and the point-mass columns of the
    # default fit; with any, the IWAE of a fit with families="gaussian"
    worst_vae: float = float("nan")
    point_mass_columns: int = 0
    iwae_gaussian: float | None = None


def accuracy(F_train, F_test, y_train, y_test) -> float:
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    return clf.fit(F_train, y_train).score(F_test, y_test)


def reconstruction_error(X_rec, X_test, scale) -> float:
    return float(np.mean(((X_rec - X_test) / scale) ** 2))


def iwae(vae: VAETransformer, X: np.ndarray, n_samples: int) -> float:
    """Mean importance-weighted bound in nats per row, in the units of X."""
    chunk = max(1, 2**22 // (n_samples * X.shape[1]))
    return float(iwae_bound(vae, X, n_samples, seed=0, chunk=chunk).mean())


def pca_cell(k, X_train, X_test, y_train, y_test, scale):
    """Return PCA's best accuracy, reconstruction and log-likelihood (raw or std)."""
    scaler = StandardScaler().fit(X_train)
    log_scale = np.sum(np.log(scaler.scale_))
    raw = PCA(k, random_state=0).fit(X_train)
    std = PCA(k, random_state=0).fit(scaler.transform(X_train))
    S_train, S_test = scaler.transform(X_train), scaler.transform(X_test)
    acc = max(
        accuracy(raw.transform(X_train), raw.transform(X_test), y_train, y_test),
        accuracy(std.transform(S_train), std.transform(S_test), y_train, y_test),
    )
    X_raw_rec = raw.inverse_transform(raw.transform(X_test))
    rec = min(
        reconstruction_error(X_raw_rec, X_test, scale),
        reconstruction_error(
            scaler.inverse_transform(std.inverse_transform(std.transform(S_test))),
            X_test,
            scale,
        ),
    )
    ll = max(raw.score(X_test), std.score(S_test) - log_scale)
    degenerate = min(raw.noise_variance_, std.noise_variance_) < 1e-8
    return acc, rec, ll, degenerate


def run_cell(name, k, X_train, X_test, y_train, y_test, n_iwae, params) -> Cell:
    scale = X_train.std(axis=0)
    scale[scale == 0] = 1.0
    acc_pca, rec_pca, ll_pca, degenerate = pca_cell(
        k, X_train, X_test, y_train, y_test, scale
    )
    vae = VAETransformer(n_components=k, random_state=0, **params)
    with PeakMemory() as memory, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        vae.fit(X_train)
        fit_s = time.perf_counter() - start
    start = time.perf_counter()
    Z_test = vae.transform(X_test)
    rows_s = X_test.shape[0] / (time.perf_counter() - start)
    acc_vae = accuracy(vae.transform(X_train), Z_test, y_train, y_test)
    rec_vae = reconstruction_error(vae.inverse_transform(Z_test), X_test, scale)
    kl = vae.kl_per_component_
    scores = vae.score_samples(X_test)
    masses = int(np.sum(vae.column_likelihoods_ == "point_mass"))
    iwae_gaussian = None
    if masses:  # PCA's density compares with a density (see DENSITIES)
        density = VAETransformer(
            n_components=k, random_state=0, **{**params, "families": "gaussian"}
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            iwae_gaussian = iwae(density.fit(X_train), X_test, n_iwae)
    return Cell(
        dataset=name,
        k=k,
        n_train=X_train.shape[0],
        n_features=X_train.shape[1],
        acc_raw=accuracy(X_train, X_test, y_train, y_test),
        acc_pca=acc_pca,
        acc_vae=acc_vae,
        rec_pca=rec_pca,
        rec_vae=rec_vae,
        ll_pca=float(ll_pca),
        elbo_vae=float(scores.mean()),
        iwae_vae=iwae(vae, X_test, n_iwae),
        pca_degenerate=bool(degenerate),
        fit_s=fit_s,
        epochs=vae.n_iter_,
        s_per_epoch=fit_s / vae.n_iter_,
        transform_rows_s=rows_s,
        peak_mb=memory.mb,
        active_units=int(np.sum(kl > 0.01)),
        kl_per_component=[round(float(v), 3) for v in kl],
        worst_vae=float(scores.min()),
        point_mass_columns=masses,
        iwae_gaussian=iwae_gaussian,
    )


def goals(cell: Cell) -> dict[str, bool | None]:
    """Issue goals: (a) accuracy, (b) log-likelihood, (c) reconstruction at k <= 5."""
    density = cell.iwae_vae if cell.iwae_gaussian is None else cell.iwae_gaussian
    return {
        "a": cell.acc_vae >= cell.acc_pca - 0.005,
        "b": None if cell.pca_degenerate else density >= cell.ll_pca,
        "c": cell.rec_vae <= cell.rec_pca if cell.k <= 5 else None,
    }


def markdown(cells: list[Cell], mode: str, seconds: float) -> str:
    mark = {True: "yes", False: "**no**", None: "-"}
    lines = [
        f"# skvae vs PCA ({mode} mode)",
        "",
        "Default VAETransformer against PCA's best of raw/standardised; "
        f"{seconds:.0f} s in all on {torch.get_num_threads()} torch threads. "
        "Goals: (a) acc_vae >= acc_pca - 0.005; (b) IWAE >= PCA log-likelihood "
        f"unless PCA is degenerate; (c) rec_vae <= rec_pca at k <= 5. {DENSITIES} "
        "worst row: the lowest held-out row's ELBO. rows/s: "
        "transform throughput on the test rows (rough: small test sets); peak MB: "
        "resident memory added during fit, in one process for all fits, so 0 where "
        "memory freed by an earlier fit was reused.",
        "",
    ]
    header = (
        "dataset, k, acc raw, acc PCA, acc VAE, rec PCA, rec VAE, loglik PCA, "
        "ELBO VAE, worst row, IWAE VAE, masses, IWAE gaussian, active, fit s, "
        "epochs, rows/s, peak MB, (a), (b), (c)"
    ).split(", ")
    rows = []
    for c in cells:
        g = goals(c)
        rows.append(
            [
                c.dataset,
                c.k,
                f"{c.acc_raw:.3f}",
                f"{c.acc_pca:.3f}",
                f"{c.acc_vae:.3f}",
                f"{c.rec_pca:.3f}",
                f"{c.rec_vae:.3f}",
                f"{c.ll_pca:.1f}",
                f"{c.elbo_vae:.1f}",
                f"{c.worst_vae:,.0f}",
                f"{c.iwae_vae:.1f}",
                c.point_mass_columns,
                "-" if c.iwae_gaussian is None else f"{c.iwae_gaussian:.1f}",
                f"{c.active_units}/{c.k}",
                f"{c.fit_s:.1f}",
                c.epochs,
                f"{c.transform_rows_s:,.0f}",
                f"{c.peak_mb:.0f}",
                *(mark[g[key]] for key in "abc"),
            ]
        )
    lines += markdown_table(header, rows, "lr" + "r" * 16 + "ccc")
    met = {
        key: [goals(c)[key] for c in cells if goals(c)[key] is not None]
        for key in "abc"
    }
    lines += [""] + [
        f"- goal ({key}): met in {sum(v)} of {len(v)} cells" for key, v in met.items()
    ]
    return "\n".join(lines) + "\n"


def plot(cells: list[Cell], out: Path, mode: str) -> list[Path]:
    """Accuracy and log-likelihood against k per dataset, and seconds per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(c.dataset for c in cells))
    paths = []
    for metric, title, series in [
        (
            "accuracy",
            "LogisticRegression test accuracy on k features",
            [("acc_vae", "VAE"), ("acc_pca", "PCA (best)"), ("acc_raw", "raw")],
        ),
        (
            "loglik",
            "Held-out log-likelihood per row (nats)",
            [
                ("iwae_vae", "VAE IWAE bound"),
                ("elbo_vae", "VAE ELBO"),
                ("iwae_gaussian", 'VAE IWAE, families="gaussian"'),
                ("ll_pca", "PCA (best)"),
            ],
        ),
    ]:
        n_cols = min(4, len(names))
        n_rows = -(-len(names) // n_cols)
        fig, axes = plt.subplots(
            n_rows, n_cols, figsize=(3.2 * n_cols, 3.0 * n_rows), squeeze=False
        )
        for ax in axes.flat[len(names) :]:
            ax.set_visible(False)
        for ax, name in zip(axes.flat, names, strict=False):
            rows = [c for c in cells if c.dataset == name]
            ks = [c.k for c in rows]
            for key, label in series:
                style = "--" if key == "acc_raw" else "-o"
                values = [getattr(c, key) for c in rows]
                values = [np.nan if v is None else v for v in values]
                ax.plot(ks, values, style, label=label, ms=4)
            ax.set_title(name)
            ax.set_xlabel("k")
            ax.set_xticks(ks)
        axes[0][0].legend(fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
        paths.append(out / f"{mode}_{metric}.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.2))
    labels = [f"{c.dataset} k={c.k}" for c in cells]
    ax.barh(labels, [1000 * c.s_per_epoch for c in cells])
    ax.set_xlabel("ms per epoch (VAETransformer defaults)")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    paths.append(out / f"{mode}_time_per_epoch.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def main(argv=None) -> list[Cell]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_const", dest="mode", const="quick")
    group.add_argument("--full", action="store_const", dest="mode", const="full")
    parser.add_argument("--datasets", nargs="+", help="run only these datasets")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--save",
        action="store_true",
        help="write the results (and the full run's plots) to --out; without it the "
        "run only prints, so that the committed results stay as they are",
    )
    parser.add_argument(
        "--params",
        type=json.loads,
        default={},
        help="JSON overrides of VAETransformer's defaults (results are not saved)",
    )
    parser.add_argument(
        "--plot-only",
        action="store_true",
        help="redraw the full run's plots from its saved JSON, without fitting",
    )
    parser.set_defaults(mode="quick")
    args = parser.parse_args(argv)
    if args.plot_only:
        saved = json.loads((args.out / "full.json").read_text())
        cells = [Cell(**cell) for cell in saved]
        plot(cells, args.out, "full")
        return cells

    plan = MODES[args.mode]
    if args.datasets:
        plan = {name: MODES["full"][name] for name in args.datasets}
    cells = []
    start = time.perf_counter()
    for name, (ks, max_train, max_test) in plan.items():
        X_train, X_test, y_train, y_test = load_split(name, max_train, max_test)
        for k in ks:
            if k >= X_train.shape[1]:
                continue
            cell = run_cell(
                name,
                k,
                X_train,
                X_test,
                y_train,
                y_test,
                IWAE_SAMPLES[args.mode],
                args.params,
            )
            cells.append(cell)
            print(
                f"{name:>13} k={k:<2} acc vae {cell.acc_vae:.3f} pca {cell.acc_pca:.3f}"
                f" | loglik iwae {cell.iwae_vae:9.1f} pca {cell.ll_pca:9.1f} | rec vae"
                f" {cell.rec_vae:.3f} pca {cell.rec_pca:.3f} | {cell.fit_s:5.1f} s",
                flush=True,
            )
    seconds = time.perf_counter() - start
    report = markdown(cells, args.mode, seconds)
    print()
    print(report)
    if args.save and not (args.datasets or args.params):
        save_results(args.mode, [asdict(c) for c in cells], report, out=args.out)
        if args.mode == "full":
            plot(cells, args.out, args.mode)
    return cells


if __name__ == "__main__":
    main()
