"""Dask collections in, lazy dask collections out.

``transform``, ``inverse_transform`` and ``score_samples`` of a fitted estimator
run partition by partition (block by block for arrays) where the data live, with
the in-memory method doing the numerics, and return a lazy collection of the
matching type with its ``meta`` (names and dtypes) set. Each partition runs with
one torch thread, so that a worker's threads are never oversubscribed. Dask is
imported here only, and only for input that already is a dask collection.
"""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import torch


def is_dask_collection(X: Any) -> bool:
    """Whether ``X`` is a dask DataFrame, Series or Array (without importing dask)."""
    return type(X).__module__.split(".")[0] in ("dask", "dask_expr")


def reject(estimator: Any) -> None:
    """Raise the error that says what takes a dask collection, and what to do."""
    name = type(estimator).__name__
    if hasattr(estimator, "partial_fit"):
        advice = (
            "To train, pass the partitions one at a time: `for part in "
            "X.partitions: vae.partial_fit(part.compute())` (for a dask Array, "
            "`X.blocks`), the first one a representative sample. transform, "
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


def dask_aware(method: Any) -> Any:
    """Send dask input of ``method`` to ``dask_apply``, before any other wrapper.

    scikit-learn's set_output wrapper turns what ``transform`` returns into a
    pandas DataFrame, which would compute a lazy result: dask input must not
    reach it.
    """

    @functools.wraps(method)
    def wrapper(self: Any, X: Any, *args: Any, **kwargs: Any) -> Any:
        if is_dask_collection(X):
            return dask_apply(self, method.__name__, X)
        return method(self, X, *args, **kwargs)

    return wrapper


# torch's thread count is process-wide, and dask's threaded scheduler runs
# partitions side by side: the first partition in saves the count, the last one
# out restores it.
_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 1


@contextmanager
def _one_torch_thread():
    global _threads_users, _threads_saved
    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


def _run(part: Any, method: Any, wrap: Any) -> Any:
    with _one_torch_thread():
        return wrap(method(part), part)


def dask_apply(estimator: Any, name: str, X: Any) -> Any:
    """Lazy ``estimator.<name>(X)`` over a dask DataFrame or Array."""
    import dask.array as da
    import dask.dataframe as dd

    method = getattr(estimator, name)
    pandas_out = getattr(estimator, "_sklearn_output_config", {}).get("transform")
    if isinstance(X, dd.DataFrame):
        meta, wrap = _frame_meta(estimator, name)
        return X.map_partitions(_run, method, wrap=wrap, meta=meta)
    if (
        isinstance(X, da.Array)
        and name == "inverse_transform"
        and (estimator._codec.is_frame)
    ):  # latent points to a table like the training DataFrame
        return dask_apply(estimator, name, dd.from_dask_array(X.rechunk({1: -1})))
    if isinstance(X, da.Array):
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-D dask array, got {X.ndim} dimensions.")
        X = X.rechunk({1: -1})  # every block holds whole rows
        width, dtype = _array_out(estimator, name, X.dtype)
        if width is None:  # one value per row
            return X.map_blocks(
                _run, method, wrap=_plain, drop_axis=1, dtype=dtype, meta=np.empty(0)
            )
        out = X.map_blocks(
            _run,
            method,
            wrap=_plain,
            chunks=(X.chunks[0], (width,)),
            dtype=dtype,
            meta=np.empty((0, 0), dtype=dtype),
        )
        if name == "transform" and pandas_out == "pandas":
            return dd.from_dask_array(
                out, columns=list(estimator.get_feature_names_out())
            )
        return out
    raise TypeError(
        f"{type(estimator).__name__}.{name} takes a dask DataFrame or a 2-D dask "
        f"Array; got {type(X).__name__}."
    )


def _plain(result: Any, part: Any) -> Any:
    """Return a block's result as an array (set_output may make it a DataFrame)."""
    return result.to_numpy() if isinstance(result, pd.DataFrame) else result


def _frame_meta(estimator: Any, name: str) -> tuple[Any, Any]:
    """Return the empty pandas object a partition gives, and how to build it."""
    if name == "score_samples":
        meta = pd.Series(np.empty(0), name="score")

        def wrap(result: np.ndarray, part: pd.DataFrame) -> pd.Series:
            return pd.Series(result, index=part.index, name="score")

        return meta, wrap
    if name == "transform":
        names = list(estimator.get_feature_names_out())
        meta = pd.DataFrame({n: np.empty(0) for n in names})

        def wrap(result: Any, part: pd.DataFrame) -> pd.DataFrame:
            if isinstance(result, pd.DataFrame):
                return result.set_axis(part.index)
            return pd.DataFrame(result, index=part.index, columns=names)

        return meta, wrap
    # inverse_transform: a table like the training one (as inverse_transform
    # gives it for zero rows), or numbered columns for an array-fitted model.
    empty = estimator._to_output(np.empty((0, estimator._codec.width)), np.float64)
    meta = empty if isinstance(empty, pd.DataFrame) else pd.DataFrame(empty)

    def wrap(result: Any, part: pd.DataFrame) -> pd.DataFrame:
        frame = result if isinstance(result, pd.DataFrame) else pd.DataFrame(result)
        return frame.set_axis(part.index)

    return meta, wrap


def _array_out(estimator: Any, name: str, dtype: Any) -> tuple[int | None, Any]:
    float_dtype = np.float32 if dtype == np.float32 else np.float64
    if name == "score_samples":
        return None, np.float64
    if name == "transform":
        return estimator.n_components, float_dtype
    return estimator.n_features_in_, float_dtype
