"""Labels for a label-aware latent: what ``y`` is, and how the model sees it.

No torch and no scikit-learn estimators here: ``fit_targets`` reads ``y`` as
scikit-learn's ``type_of_target`` does, and returns the codes the training loop
takes: class codes (-1 for a row without a label), or standardised continuous
targets (NaN where missing).

Rows without a label follow scikit-learn's semi-supervised estimators
(``SelfTrainingClassifier``, ``LabelSpreading``): -1 in numeric class labels, and
NaN, None or ``pd.NA`` in any ``y``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.multiclass import type_of_target

CLASSES, CONTINUOUS = "classes", "continuous"
UNLABELLED = -1


@dataclass
class TargetCodec:
    """How ``y`` was read in fit: classes (with their labels) or continuous."""

    kind: str
    type_of_target: str
    classes: np.ndarray | None = None


def class_codes(classes: np.ndarray, labels: Any, name: str = "y") -> np.ndarray:
    """Return the position in ``classes`` of each label; unknown labels raise."""
    labels = np.asarray(labels, dtype=object).ravel()
    codes = pd.Index(np.asarray(classes, dtype=object)).get_indexer(labels)
    if (codes < 0).any():
        unknown = list(pd.unique(labels[codes < 0])[:5])
        raise ValueError(
            f"{name} holds labels the model was not fitted with: {unknown}. Its "
            f"classes are {list(classes)} (see classes_)."
        )
    return codes.astype(np.int64)


def fit_targets(y: Any, n_rows: int) -> tuple[TargetCodec, np.ndarray]:
    """Read ``y`` for ``n_rows`` rows; return its codec and the model's targets.

    Class labels give int64 codes (n_rows,), -1 where unlabelled. Continuous
    targets give float64 (n_rows, n_targets), standardised over the observed
    values, NaN where missing. Raises a ValueError for a ``y`` of the wrong
    length, one without a single label, or of a kind the model cannot learn.
    """
    values = _as_array(y)
    if values.ndim == 0:
        raise ValueError(
            f"y must be array-like with one target per row of X, got a scalar {y!r}."
        )
    if values.shape[0] != n_rows:
        raise ValueError(
            f"y has {values.shape[0]} rows but X has {n_rows}; pass one target "
            "per row of X."
        )
    if values.ndim > 2 or values.size == 0:
        raise ValueError(
            f"y must be 1-D (one label per row) or 2-D (continuous targets), got "
            f"shape {values.shape}."
        )
    missing = np.asarray(pd.isna(values), dtype=bool)
    if values.ndim == 2 and values.shape[1] == 1 and values.dtype.kind != "f":
        # a column of labels; a column of floats is a continuous target, whole
        # numbers too (ages, counts), which 1-D read as classes
        values, missing = values[:, 0], missing[:, 0]
    if values.ndim == 2:
        return _fit_continuous(values, missing)
    present = values[~missing]
    if present.size == 0:
        raise ValueError(
            "y has no labelled rows: every entry is missing (NaN or None). Give at "
            "least one label, or set target_weight=0 to train without labels."
        )
    numeric = all(
        isinstance(v, int | float | np.integer | np.floating)
        and not isinstance(v, bool)
        for v in present[:1000]
    )
    minus_one = np.zeros(values.shape[0], dtype=bool)
    if numeric:
        numbers = present.astype(np.float64)
        if np.isinf(numbers).any():
            raise ValueError("y contains infinity; use NaN to mark a missing target.")
        minus_one[~missing] = numbers == UNLABELLED
    candidates = values[~missing & ~minus_one]
    kind = _target_type(_typed(candidates if candidates.size else present))
    if kind in ("continuous",):
        return _fit_continuous(values[:, None], missing[:, None])
    if kind not in ("binary", "multiclass"):
        raise ValueError(
            f"Unknown label type: y is {kind!r} (scikit-learn's type_of_target); "
            "the label head takes one column of class labels, or continuous "
            "targets (1-D or 2-D floats)."
        )
    if candidates.size == 0:
        raise ValueError(
            "y has no labelled rows: every label is -1, the mark of a row without "
            "a label. Give at least one label, or set target_weight=0."
        )
    # type_of_target has ordered them (np.unique), mixed kinds raising there
    classes = np.asarray(sorted(pd.unique(candidates)), dtype=object)
    if len(classes) == 1 and minus_one.any():
        raise ValueError(
            f"y has a single class ({classes[0]!r}) besides -1, and -1 marks rows "
            "without a label (as in scikit-learn's semi-supervised estimators). If "
            "-1 is a class, recode the labels (e.g. to 0 and 1, or to strings)."
        )
    codec = TargetCodec(CLASSES, kind, classes=_natural(classes))
    codes = np.full(values.shape[0], UNLABELLED, dtype=np.int64)
    labelled = ~missing & ~minus_one
    codes[labelled] = class_codes(codec.classes, values[labelled])
    return codec, codes


def _as_array(y: Any) -> np.ndarray:
    if isinstance(y, pd.DataFrame | pd.Series):
        y = y.to_numpy(dtype=object) if _nullable(y) else y.to_numpy()
    values = np.asarray(y)
    if values.dtype.kind in "US":  # fixed-width strings: as Python objects
        values = values.astype(object)
    return values


def _nullable(y: pd.Series | pd.DataFrame) -> bool:
    dtypes = y.dtypes if isinstance(y, pd.DataFrame) else [y.dtype]
    return any(not isinstance(d, np.dtype) for d in dtypes)


def _typed(values: np.ndarray) -> np.ndarray:
    """Booleans and numbers held as objects as a bool, int or float array.

    A column with holes, a nullable or pyarrow dtype (``Int64``, ``boolean``,
    ``int64[pyarrow]``), a categorical of numbers or a list with None come as
    objects, which scikit-learn's ``type_of_target`` reads as ``"unknown"``; in
    their own dtype they are the labels or targets they are.
    """
    if values.dtype != object or not values.size:
        return values
    if all(isinstance(v, bool | np.bool_) for v in values):
        return values.astype(bool)
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        return values.astype(np.int64)
    if all(
        isinstance(v, int | float | np.integer | np.floating)
        and not isinstance(v, bool | np.bool_)
        for v in values
    ):
        return values.astype(np.float64)
    return values


def _target_type(values: np.ndarray) -> str:
    try:
        return type_of_target(values, input_name="y")
    except TypeError:  # np.unique cannot order strings and numbers
        raise ValueError(
            "y mixes labels of different types (e.g. strings and numbers), which "
            "cannot be ordered as classes. Convert them to one type."
        ) from None
    except ValueError as exc:
        raise ValueError(f"y cannot be read as targets: {exc}") from None


def _natural(classes: np.ndarray) -> np.ndarray:
    """Return the classes in the dtype NumPy gives them (ints, floats, strings)."""
    natural = np.asarray(classes.tolist())
    return natural if natural.dtype.kind in "biufU" else classes


def _fit_continuous(
    values: np.ndarray, missing: np.ndarray
) -> tuple[TargetCodec, np.ndarray]:
    try:
        numbers = np.where(missing, np.nan, values).astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            "y has several columns but is not numeric; the label head takes one "
            "column of class labels, or continuous targets."
        ) from None
    kind = _target_type(np.where(missing, 0.0, numbers))
    floats = values.dtype.kind == "f" or (
        values.dtype == object
        and any(isinstance(v, float | np.floating) for v in values[~missing])
    )
    if kind in ("multilabel-indicator", "multiclass-multioutput") and not floats:
        # integer columns: one-hot or several label columns, which the head
        # cannot take; float columns are continuous targets, whole or not
        raise ValueError(
            f"y is {kind!r} (scikit-learn's type_of_target); the label head takes "
            "one column of class labels, or continuous targets. Pass a 1-D y, or "
            "a float array for continuous targets."
        )
    if np.isinf(numbers).any():
        raise ValueError("y contains infinity; use NaN to mark a missing target.")
    observed = ~np.isnan(numbers)
    if not observed.any(axis=0).all():
        j = int(np.argmin(observed.any(axis=0)))
        raise ValueError(
            f"Target column {j} of y has no observed values: every entry is NaN."
        )
    mean = np.nanmean(numbers, axis=0)
    std = np.nanstd(numbers, axis=0)
    scale = np.where(std > 10 * np.finfo(np.float64).eps * np.abs(mean), std, 1.0)
    scale = np.where(scale > 0, scale, 1.0)
    codec = TargetCodec(
        CONTINUOUS,
        "continuous" if numbers.shape[1] == 1 else "continuous-multioutput",
    )
    return codec, (numbers - mean) / scale
