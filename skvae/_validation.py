"""Input checks and small conversions shared by the estimators' faces."""

from __future__ import annotations

import sys
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import validate_data

if TYPE_CHECKING:
    import torch


def is_dask_collection(X: Any) -> bool:
    """Whether ``X`` is a dask DataFrame, Series or Array (without importing dask)."""
    return type(X).__module__.split(".")[0] in ("dask", "dask_expr")


def reject_dask(estimator: Any) -> None:
    """Raise the error that says what takes a dask collection, and what to do."""
    name = type(estimator).__name__
    if hasattr(estimator, "partial_fit"):
        advice = (
            "fit takes the dask collection itself and streams its partitions; "
            "partial_fit takes one computed partition at a time: `for part in "
            "X.partitions: vae.partial_fit(part.compute())`. transform, "
            "inverse_transform and score_samples take dask collections and stay lazy."
        )
    else:
        advice = (
            "Fit it on a representative sample computed into memory, then apply it "
            "partition by partition: `X.map_partitions(estimator.transform)`."
        )
    raise TypeError(
        f"{name} cannot take a dask collection here: it would load the whole "
        f"collection into this process. {advice}"
    )


def user_stacklevel() -> int:
    """Return the ``stacklevel`` that points a warning of the caller at user code.

    Frames of skvae, scikit-learn (``_fit_context``, meta-estimators) and
    functools are skipped, whatever path led to the warning.
    """
    frame, level = sys._getframe(1), 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(("skvae.", "sklearn.", "functools")):
            return level
        frame, level = frame.f_back, level + 1
    return 1


def validate_table(estimator: BaseEstimator, X: Any, reset: bool) -> Any:
    """Check ``X`` and its feature names; return a DataFrame or a 2-D ndarray.

    DataFrames keep their column dtypes, which decide the column types. Other
    input goes through ``check_array``: numeric arrays become float, object
    arrays stay object (for categorical columns given by index).
    """
    if is_dask_collection(X):
        reject_dask(estimator)
    if is_polars(X):
        X = X.to_pandas()
    if isinstance(X, pd.DataFrame):
        if not X.columns.is_unique:
            repeated = X.columns[X.columns.duplicated()].unique().tolist()
            raise ValueError(
                f"X has repeated column names {repeated}; every column needs a "
                "unique name."
            )
        validate_data(estimator, X, skip_check_array=True, reset=reset)
        n_rows, n_cols = X.shape
        # A fit needs two rows; a fitted model takes any number, none included
        # (an empty partition, the ordinary result of filtering a dask frame).
        minimum = 2 if reset else 0
        if n_rows < minimum:
            raise ValueError(
                f"Found array with {n_rows} sample(s) (shape={X.shape}) while a "
                f"minimum of {minimum} is required by {type(estimator).__name__}."
            )
        if n_cols < 1:
            raise ValueError(
                f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
                f"of 1 is required by {type(estimator).__name__}."
            )
        return X
    X = validate_data(
        estimator,
        X,
        dtype=None,
        ensure_all_finite="allow-nan",
        ensure_min_samples=2 if reset else 0,
        reset=reset,
    )
    if X.dtype.kind in "fc":
        return X
    if X.dtype.kind in "iub":
        return X.astype(np.float64)
    return X.astype(object)


def is_polars(X: Any) -> bool:
    return type(X).__module__.split(".")[0] == "polars" and hasattr(X, "to_pandas")


def float_dtype(X: Any) -> type:
    """Output float dtype for ``transform``: float32 stays float32."""
    dtype = getattr(X, "dtype", None)
    return np.float32 if dtype == np.float32 else np.float64


def resolve_device(device: str | torch.device) -> torch.device:
    """Return the torch device of the ``device`` parameter; raise a clear error."""
    import torch  # not at import: ``import skvae`` leaves torch for the first fit

    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device; use 'auto', 'cpu', "
            "'cuda' or 'cuda:N'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this "
            "machine (torch.cuda.is_available() is False). Use device='auto' or "
            "'cpu', or install a CUDA build of PyTorch."
        )
    return resolved


def seed_from(random_state: int | np.random.RandomState | None) -> int:
    """Return a 63-bit torch seed for a scikit-learn ``random_state``.

    None draws fresh entropy rather than from NumPy's global generator, so that an
    unseeded fit leaves the global random state untouched.
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
    if isinstance(random_state, Integral):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int64).max, dtype=np.int64))
    raise ValueError(
        f"random_state must be None, an int or a numpy RandomState, got "
        f"{random_state!r}."
    )
