"""Dask collections in, lazy dask collections out.

``transform``, ``inverse_transform`` and ``score_samples`` of a fitted estimator
run partition by partition (block by block for arrays) where the data live, with
the in-memory method doing the numerics, and return a lazy collection of the
matching type with its ``meta`` (names and dtypes) set. Each partition runs with
one torch thread, so that a worker's threads are never oversubscribed. Dask is
imported here only, and only for input that already is a dask collection.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._holes import hole_model
from ._inference import encode_checked, latent_attributes, to_output
from ._setup import new_module, prepare, read_rows, run_training, setup_attributes
from ._threads import torch_threads
from ._training import (
    MAX_VALIDATION_ROWS,
    HeldOut,
    Partitions,
    TrainingRows,
    as_tensors,
)
from ._validation import reject_dask, seed_from


def _run(part: Any, method: Any, wrap: Any) -> Any:
    # dask's threaded scheduler runs partitions side by side, each on one torch
    # thread: the scheduler's threads are the parallelism.
    with torch_threads(1):
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
        and estimator.codec_.is_frame
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
    codec = estimator.codec_
    empty = to_output(codec, np.empty((0, codec.width)), np.float64)
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


# -- fit ------------------------------------------------------------------------------
# Rows kept in memory for the PCA start (and the column typing) and for the
# validation loss of early stopping: bounded, whatever the size of the data.
SAMPLE_ROWS = 10_000


def check_dask_fit(estimator: Any, y: Any, sample_weight: Any) -> None:
    """Raise a clear ValueError for what a fit on a dask collection cannot take."""
    if sample_weight is not None:
        raise ValueError(
            "sample_weight is not supported when fitting a dask collection. "
            "Fit an in-memory table (a pandas DataFrame or NumPy array) to "
            "weigh rows."
        )
    if y is not None and estimator.target_weight > 0:
        raise ValueError(
            f"target_weight={estimator.target_weight:g} trains on labels, which a "
            "fit on a dask collection does not take. Fit an in-memory table "
            "with y, or set target_weight=0."
        )


def fit_dask(estimator: Any, X: Any, hooks: Any = None) -> dict[str, Any]:
    """Fit on a dask DataFrame or Array, one partition at a time.

    Returns every fitted attribute; sets nothing on ``estimator`` but what
    ``validate_data`` sets. One dask pass gives the column statistics, the
    categories with their counts, the validation rows and a sample of the
    training rows (which types the columns and starts the model at PPCA).
    Categorical columns learn the levels their partitions declare, united in
    order of first appearance (as ``dask.compute`` and pandas'
    ``union_categoricals`` unite them), never dask's placeholder for unknown
    categories; every partition is cast to that learned dtype before it is
    sampled or encoded (see ``_learned_levels``). With ``early_stopping``,
    each partition holds out a seeded random share of its rows,
    ``validation_fraction`` but at most ``MAX_VALIDATION_ROWS`` rows in all:
    the same rows every epoch, never trained on. Each epoch visits the
    partitions in a seeded random order, each shuffled within; only one
    partition is in memory at a time. The set-up and the training are those of
    an in-memory fit (``_setup``).
    """
    import dask
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(X, da.Array):
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-D dask array, got {X.ndim} dimensions.")
        if any(np.isnan(size) for size in X.chunks[0]):
            # A boolean mask leaves the blocks' lengths unknown: one pass finds
            # them, as dask advises (``compute_chunk_sizes``, which works in
            # place: on a copy, to leave the caller's array as it was).
            X = X.copy().compute_chunk_sizes()
        if X.shape[0] == 0:
            raise _no_rows(estimator, X.numblocks[0])
        if 0 in X.chunks[0]:  # dask's nanmin fails on an empty block
            sizes = X.chunks[0]
            X = da.concatenate([X.blocks[i] for i, n in enumerate(sizes) if n])
        X = X.rechunk({1: -1})
        parts, frame = list(X.blocks), False
    elif isinstance(X, dd.DataFrame):
        parts, frame = list(X.partitions), True
    else:
        reject_dask(estimator)
    rng = np.random.default_rng(seed_from(estimator.random_state) % 2**32)
    seeds = rng.integers(2**31, size=len(parts))

    lengths, statistics = dask.compute(
        [part.shape[0] for part in parts], _statistics(X, frame)
    )
    dtypes, level_counts = _learned_levels(statistics.pop("levels"))
    statistics["counts"] |= level_counts
    n_rows = int(sum(lengths))
    if n_rows == 0:
        raise _no_rows(estimator, len(parts))
    held_share = 0.0
    if estimator.early_stopping:
        held_share = min(estimator.validation_fraction, MAX_VALIDATION_ROWS / n_rows)
    split = [
        dask.delayed(_split)(part, seed, held_share, dtypes)
        for part, seed in zip(parts, seeds, strict=True)
    ]
    sample_share = min(1.0, SAMPLE_ROWS / n_rows)
    held, sample = dask.compute(
        [piece[0] for piece in split],
        [
            dask.delayed(_thin)(piece[1], seed, sample_share)
            for piece, seed in zip(split, seeds, strict=True)
        ],
    )
    held, sample = _concat(held), _concat(sample)
    n_held = len(held)

    setup = prepare(
        estimator,
        read_rows(estimator, sample),
        statistics=_by_position(statistics, sample, frame),
    )
    codec = setup.codec

    def encode(table: Any) -> tuple[np.ndarray, np.ndarray]:
        # No torch here: this runs in Partitions' loading thread too.
        return encode_checked(
            codec, table, estimator.likelihood, estimator.handle_unknown
        )

    def load(i: int) -> tuple[np.ndarray, np.ndarray]:
        return encode(_split(parts[i].compute(), seeds[i], held_share, dtypes)[1])

    source = Partitions(load, len(parts), n_rows - n_held, setup.device)
    start, _ = as_tensors(setup.values, setup.observed, setup.device)
    offset_train = float(codec.log_jacobian(setup.observed, setup.values).mean())
    module = new_module(estimator, setup, start)
    held_out, offset_val = None, None
    if n_held:  # too few rows to hold any out: no validation
        values, observed = encode(held)
        X_val, M_val = as_tensors(values, observed, setup.device)
        held_out = HeldOut(X_val, setup.generator, estimator.n_components, M_val)
        offset_val = float(codec.log_jacobian(observed, values).mean())
    attributes = setup_attributes(estimator, setup)
    attributes["n_samples_seen_"] = n_rows
    attributes |= run_training(
        estimator,
        setup,
        module,
        TrainingRows(source),
        held_out,
        (offset_train, offset_val),
        hooks,
        dict(attributes),
    )
    attributes |= latent_attributes(attributes["module_"], setup.values)
    # On the set-up sample, as the latent attributes.
    attributes["_holes"] = hole_model(
        attributes["module_"], setup.values, setup.observed
    )
    return attributes


def _no_rows(estimator: Any, n_parts: int) -> ValueError:
    """Return the error of a fit on a dask collection with all partitions empty."""
    return ValueError(
        f"The dask collection has no rows: its {n_parts} partitions are all "
        "empty (as a filter can leave them). "
        f"{type(estimator).__name__} needs at least one row to fit."
    )


def _split(
    table: Any, seed: int, share: float, dtypes: dict | None = None
) -> tuple[Any, Any]:
    """(held-out rows, training rows) of a partition: the same ones every time.

    ``dtypes`` (column name: learned ``CategoricalDtype``) are given to a
    DataFrame's columns first (see ``_cast``).
    """
    if dtypes:
        table = _cast(table, dtypes)
    held = np.random.default_rng(seed).random(len(table)) < share
    return table[held], table[~held]


def _cast(table: pd.DataFrame, dtypes: dict) -> pd.DataFrame:
    """Give the columns in ``dtypes`` their learned category dtype.

    Partitions may declare different categories (or none), and pandas joins
    such columns as plain objects; cast, the rows sampled, held out and
    trained on all carry the dtype the codec learned. ``set_categories``
    rather than ``astype``: unordered dtypes with the same levels in another
    order compare equal, and ``astype`` would keep the partition's order.
    """
    table = table.copy(deep=False)  # the partition itself stays as it was
    for name, dtype in dtypes.items():
        series = table[name]
        if isinstance(series.dtype, pd.CategoricalDtype):
            table[name] = series.cat.set_categories(
                dtype.categories, ordered=dtype.ordered
            )
        else:  # a partition that does not hold the dtype its meta says
            table[name] = series.astype(dtype)
    return table


def _thin(table: Any, seed: int, share: float) -> Any:
    """Return a seeded random share of a computed partition's rows."""
    if share >= 1.0:
        return table
    keep = np.random.default_rng(seed + 1).random(len(table)) < share
    return table[keep]


def _concat(tables: list) -> Any:
    if isinstance(tables[0], pd.DataFrame):
        return pd.concat(tables)
    return np.concatenate(tables)


def _statistics(X: Any, frame: bool) -> dict[str, Any]:
    """Lazy per-column statistics: moments and range of numbers, level counts.

    Category columns are counted by ``_partition_levels`` (under ``"levels"``):
    dask's ``value_counts`` of a column whose categories differ by partition
    fails ("dtype of categories must be the same"), or counts dask's
    placeholder for unknown categories as a level, once per partial result
    ("cannot reindex on an axis with duplicate labels").
    """
    import dask.array as da

    if not frame:
        isnan = da.isnan(X)
        whole = ((X == da.round(X)) | isnan).all(axis=0)
        return {
            "numeric": {
                "mean": da.nanmean(X, axis=0),
                "std": da.nanstd(X, axis=0),
                "low": da.nanmin(X, axis=0),
                "high": da.nanmax(X, axis=0),
                "integral": whole,
            },
            "counts": {},
            "levels": None,
        }
    numeric, counts, categorical = {}, {}, []
    for name in X.columns:
        column = X[name]
        dtype = column.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            categorical.append(name)
            continue
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(
            dtype
        ):
            values = column.astype("float64")
            numeric[name] = (
                values.mean(),
                values.std(ddof=0),
                values.min(),
                values.max(),
                ((values == values.round()) | values.isna()).all(),
            )
        # Counts for every column: numeric columns may be categorical too.
        if not pd.api.types.is_float_dtype(dtype):
            counts[name] = column.dropna().value_counts()
    levels = None
    if categorical:
        # One small entry per partition, reduced here: the levels and their
        # order need every partition's declared categories, not just counts.
        levels = X[categorical].map_partitions(
            _partition_levels,
            meta=pd.Series([], dtype=object),
            enforce_metadata=False,
            clear_divisions=True,
        )
    return {"numeric": numeric, "counts": counts, "levels": levels}


def _partition_levels(part: pd.DataFrame) -> pd.Series:
    """One object entry: {column: (declared levels, count of each, ordered)}.

    A category column's declared levels are its categories, observed or not
    (as in an in-memory fit); another dtype (a partition that does not hold
    the dtype its meta says) declares the values it holds.
    """
    summary = {}
    for name, series in part.items():
        if isinstance(series.dtype, pd.CategoricalDtype):
            categories = series.cat.categories
            codes = series.cat.codes.to_numpy()
            counts = np.bincount(codes[codes >= 0], minlength=len(categories))
            summary[name] = (categories, counts, bool(series.cat.ordered))
        else:
            observed = series.dropna().value_counts(sort=False)
            summary[name] = (observed.index, observed.to_numpy(), False)
    return pd.Series([summary], dtype=object)


def _learned_levels(summaries: Any) -> tuple[dict[Any, Any], dict[Any, pd.Series]]:
    """Each category column's learned dtype and level counts, from every partition.

    The levels are the union of the levels the partitions declare, in order of
    first appearance (partition by partition, each in its declared order):
    pandas' ``union_categoricals``, which ``dask.compute`` uses to join the
    partitions, so that a dask fit learns the levels an in-memory fit of the
    computed frame learns. dask's placeholder for unknown categories is never a
    level. The dtype is ordered only when every partition declares the same
    ordered levels; its categories keep the partitions' index dtype when they
    all share one. Returns ``({name: CategoricalDtype}, {name: counts})``, the
    counts a Series over the levels (object index), as ``refit_statistics``
    reads them.
    """
    if summaries is None:
        return {}, {}
    from dask.dataframe.utils import UNKNOWN_CATEGORIES

    summaries = list(summaries)
    dtypes, counts = {}, {}
    for name in summaries[0] if summaries else ():
        entries = [summary[name] for summary in summaries]
        declared = [pd.Index(entry[0]) for entry in entries]
        every = pd.Index(
            np.concatenate([np.asarray(d, dtype=object) for d in declared]),
            dtype=object,
        )
        totals = pd.Series(
            np.concatenate([np.asarray(entry[1], np.float64) for entry in entries]),
            index=every,
        )
        totals = totals[every != UNKNOWN_CATEGORIES]
        # sort=False: groups in order of first appearance, the union's order.
        totals = totals.groupby(level=0, sort=False).sum()
        levels = pd.Index(list(totals.index))  # a dtype pandas infers
        index_dtypes = {d.dtype for d in declared if len(d)}
        if len(index_dtypes) == 1:  # one the partitions share: keep it
            try:
                levels = pd.Index(totals.index, dtype=index_dtypes.pop())
            except (TypeError, ValueError):
                pass
        ordered = all(entry[2] for entry in entries) and all(
            d.equals(declared[0]) for d in declared
        )
        dtypes[name] = pd.CategoricalDtype(levels, ordered=ordered)
        counts[name] = totals
    return dtypes, counts


def _by_position(statistics: dict, sample: Any, frame: bool) -> dict[str, Any]:
    """Statistics keyed by column position, as ``refit_statistics`` reads them."""
    continuous, counts = {}, {}
    if frame:
        for i, name in enumerate(sample.columns):
            if name in statistics["numeric"]:
                continuous[i] = statistics["numeric"][name]
            if name in statistics["counts"]:
                counts[i] = statistics["counts"][name]
    else:
        s = statistics["numeric"]
        for i in range(sample.shape[1]):
            continuous[i] = (
                s["mean"][i],
                s["std"][i],
                s["low"][i],
                s["high"][i],
                s["integral"][i],
            )
    return {"continuous": continuous, "counts": counts}
