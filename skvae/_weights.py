"""Row weights: ``sample_weight`` as repetitions, and the canonical training rows.

A fit sees its training rows as a weighted set: rows of weight 0 are dropped,
equal rows (with equal labels) are merged into one whose weight is the sum of
theirs, and the rows are put in an order that depends on their values only;
whole-number weights are then spread back out as copies, when these number at
most four times the rows or 4,096 (``as_repetitions``).
So a row of weight 3 trains the model exactly as three copies of it do, and the
fit does not depend on the order of the rows, which scikit-learn's
``check_sample_weight_equivalence_on_dense_data`` asks of every estimator whose
``fit`` takes ``sample_weight``. No torch here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.utils.validation import _check_sample_weight

# Weights above this are divided by the largest one: a fit depends on their
# ratios only, and their sums would overflow float64. No whole-number weight this
# large is spread out as copies anyway (see ``as_repetitions``).
HUGE_WEIGHT = 1e150
# ``as_repetitions`` spreads whole-number weights out as copies only up to
# ``max(REPEAT_FACTOR * n_rows, REPEAT_FLOOR)`` rows: copies cost memory and time
# in proportion to their number, and beyond a few per row they buy little (a
# weight of 130,000 on one of 200 rows made 130,199 rows, measured at 663 MB and
# 5.5 s against 1 s for the same fit kept merged with its weights).
REPEAT_FACTOR, REPEAT_FLOOR = 4, 2**12


def check_weights(sample_weight: Any, X: Any) -> np.ndarray:
    """Return ``sample_weight`` as float64 (n_rows,): ones for None.

    scikit-learn's ``_check_sample_weight`` raises the ValueErrors: weights of
    the wrong shape, negative, NaN or infinite, or all zero.
    """
    if sample_weight is None:
        return np.ones(X.shape[0])
    weights = _check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True
    )
    top = weights.max()
    if top > HUGE_WEIGHT:
        # Only the weights' ratios matter to the fit, and sums of such weights
        # overflow float64 (measured: weights near 1e300 gave NaN statistics).
        weights = weights / top
    return weights


def canonical_rows(
    X: Any, weights: np.ndarray, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the positions of the distinct weighted rows, in canonical order.

    Rows of weight 0 are left out; equal rows (equal labels too, when given) are
    merged and their weights summed. The order sorts the rows by their values,
    first column first (NaN last), so it depends on the rows' values, not on
    where they were in ``X``, and it is the same for data in other units (any
    increasing transformation of a column keeps it). Returns the positions in
    ``X`` of the rows kept and their summed weights.
    """
    positive = np.flatnonzero(weights > 0)
    if len(positive) < X.shape[0]:
        X = take_rows(X, positive)
        labels = None if labels is None else labels[positive]
    keys = [_ranks(_column(X, j)) for j in range(X.shape[1])]
    if labels is not None:
        label_columns = labels.reshape(labels.shape[0], -1)
        keys += [_ranks(label_columns[:, j]) for j in range(label_columns.shape[1])]
    order = _lexsort(keys)
    # A row starts a group of equal rows unless it equals the one before it.
    first = keys[0][order]
    new_group = np.ones(len(order), dtype=bool)
    new_group[1:] = first[1:] != first[:-1]
    pairs = np.flatnonzero(~new_group[1:]) + 1  # rows whose first key ties
    for key in keys[1:]:
        if not len(pairs):
            break
        differs = key[order[pairs]] != key[order[pairs - 1]]
        new_group[pairs[differs]] = True
        pairs = pairs[~differs]
    group = np.cumsum(new_group) - 1
    summed = np.bincount(group, weights=weights[positive][order])
    return positive[order[new_group]], summed


def _lexsort(keys: list[np.ndarray]) -> np.ndarray:
    """Return the order sorting rows by ``keys``, the first key first.

    Sorts by the first key, then sorts only the rows that tie on it by the
    others: on continuous data few rows tie. Measured on 1,000,000 x 50
    normal rows: 2.3 s for the whole canonical ordering, against 9.2 s with a
    full ``np.lexsort`` (one stable sort per key) and 15.5 s with ranks of every
    column.
    """
    order = np.argsort(keys[0], kind="stable")
    first = keys[0][order]
    tied = np.zeros(len(order), dtype=bool)
    tied[1:] = first[1:] == first[:-1]
    tied[:-1] |= tied[1:]
    if len(keys) > 1 and tied.any():
        rows = order[tied]
        within = np.lexsort([key[rows] for key in keys[::-1]])
        order[tied] = rows[within]
    return order


def _column(X: Any, j: int) -> Any:
    return X.iloc[:, j] if isinstance(X, pd.DataFrame) else X[:, j]


def _ranks(values: Any) -> np.ndarray:
    """Return sort keys of a column: its numbers, or ranks of its values (NaN last).

    Numeric columns are their own keys (NaN as +inf: the column codec rejects
    infinite values anyway), which spares hashing a million floats per column
    (measured: 1,000,000 x 50 in 15 s with ranks for every column).
    """
    dtype = getattr(values, "dtype", None)
    if (
        dtype is not None
        and ptypes.is_numeric_dtype(dtype)
        and not isinstance(dtype, pd.CategoricalDtype)
        and not ptypes.is_complex_dtype(dtype)
    ):
        if isinstance(values, pd.Series):
            numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            numbers = np.asarray(values, dtype=np.float64)
        return np.where(np.isnan(numbers), np.inf, numbers)
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except (TypeError, ValueError):  # unorderable or unhashable: the codec says so
        codes, uniques = pd.factorize(pd.Series(values).astype(str), sort=True)
    codes = codes.astype(np.int64, copy=False)
    return np.where(codes < 0, len(uniques), codes)


def as_repetitions(
    positions: np.ndarray, weights: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Repeat each row by its weight when the weights are whole numbers.

    ``canonical_rows`` merges equal rows; when every weight is a whole number
    (as after merging unweighted duplicates, or for integer ``sample_weight``),
    the rows are spread back out as that many copies, in canonical order, so
    that the training sees as many rows, mini-batches and epochs as the
    repeated data would (merged, a table of 784 rows with 299 distinct ones
    took 2 steps an epoch instead of 4 and stopped at its start), and a row of
    weight 3 trains exactly as three copies of it.

    The copies are made only while they number at most
    ``max(REPEAT_FACTOR * n_rows, REPEAT_FLOOR)``, that is four times the rows
    given (of positive weight) or 4,096, whichever is larger: their cost grows
    with their number, not with what they buy. Without ``sample_weight`` the
    weights add up to ``n_rows``, so unweighted data always train on every row,
    and integer weights of at most 4 (as in scikit-learn's
    ``check_sample_weight_equivalence_on_dense_data``) are always spread out.
    Left merged, with their weights, when the weights are fractional or the
    copies would be more: a weight of 130,000 on one of 200 rows then trains as
    200 weighted rows, not as 130,199 rows.

    Parameters
    ----------
    positions : ndarray of shape (n_distinct,)
        Positions of the distinct rows, from ``canonical_rows``.

    weights : ndarray of shape (n_distinct,)
        Their summed weights.

    n_rows : int
        The number of rows given, of positive weight.

    Returns
    -------
    positions : ndarray
        The positions of the training rows: repeated, or as given.

    weights : ndarray
        Their weights: ones when repeated, else ``weights``.
    """
    whole = np.all(weights == np.round(weights))
    total = weights.sum()
    if not whole or total > max(REPEAT_FACTOR * n_rows, REPEAT_FLOOR):
        return positions, weights
    counts = weights.astype(np.int64)
    return np.repeat(positions, counts), np.ones(int(total))


def take_rows(X: Any, positions: np.ndarray) -> Any:
    """Return the rows of ``X`` at ``positions`` (a DataFrame keeps its dtypes)."""
    if isinstance(X, pd.DataFrame):
        return X.iloc[positions].reset_index(drop=True)
    return X[positions]


def weighted_pca(
    X: np.ndarray, weights: np.ndarray, n_components: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Probabilistic PCA of weighted rows: mean, components, variances, noise.

    As ``sklearn.decomposition.PCA`` on the rows repeated by their weights
    (weights scaled to mean 1; covariance divided by their sum minus 1):
    ``components`` (q, D), the top q eigenvalues of the weighted covariance, and
    the noise variance, the mean of the other D - q eigenvalues (probabilistic
    PCA's maximum likelihood; zeros included when there are fewer rows than
    columns, as in ``_setup.start_from_pca``).
    """
    weights = weights / weights.mean()
    mean = np.average(X, axis=0, weights=weights)
    centred = (X - mean) * np.sqrt(weights)[:, None]
    covariance = centred.T @ centred / max(weights.sum() - 1.0, 1e-12)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues = np.maximum(eigenvalues[::-1], 0.0)
    eigenvectors = eigenvectors[:, ::-1]
    rest = eigenvalues[n_components:]  # all D - q, as the maximum likelihood
    noise = float(rest.mean()) if rest.size else 0.0
    return mean, eigenvectors[:, :n_components].T, eigenvalues[:n_components], noise
