"""Holes in generated rows: which entries are missing, given a row's latent point.

A fitted model knows, for each column, the share of its training entries that
were missing, and how that share moves with the latent point: for each column
with holes, scikit-learn's ``LogisticRegression`` (L2, C=1, on the latent
space's unit scale) of whether the entry is missing on the row's posterior
mean,

    p(missing | z) = sigmoid(w . z + b),

which ``sample(missing=True)`` draws each entry's hole from, after drawing the
row's values from z: holes come at about each column's training rate, with
their relation to the other columns (age missing more often in third class,
say) carried by the latent point. ``fit`` fits it on its rows (the
regressions on at most ``REGRESSION_ROWS`` of them), a dask fit on its set-up
sample (as the latent attributes), ``partial_fit`` on each batch (see
``pooled``).

The model is a dict of arrays (``hole_model``), in the codec's grouped column
order: ``rate`` (n_columns,), the training share missing; ``coef``
(n_columns, n_components) and ``intercept`` (n_columns,), zero for a column
whose rate is 0 or 1 (never or always missing: nothing to regress);
``count``, the weighted rows the rates are over (for ``partial_fit`` to pool).
A logistic regression rather than a linear discriminant (which one pass of
counts and sums would fit): on a table whose holes depend on a class, the
discriminant's rates by class were 0.057/0.167/0.47 against the data's
0.041/0.107/0.525, the regression's 0.039/0.141/0.51.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._inference import encode_mean
from ._model import VAE
from ._tabular import TableCodec

KEYS = ("rate", "coef", "intercept", "count")  # of the model's dict
# The regressions fit on at most this many rows (a fixed draw of them): a few
# latent dimensions need no more, and a fit on millions of rows with holes in
# many columns would otherwise spend seconds per column. Rates use every row.
REGRESSION_ROWS = 20_000


def hole_model(
    module: VAE,
    values: np.ndarray,
    observed: np.ndarray,
    weights: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Fit the hole model to encoded rows; see the module's docstring."""
    n_rows, n_columns = observed.shape
    k = module.encoder.mu.out_features
    w = np.ones(n_rows) if weights is None else np.asarray(weights, np.float64)
    total = w.sum()
    missing = ~observed
    rate = (w @ missing) / total if total > 0 else np.zeros(n_columns)
    coef, intercept = np.zeros((n_columns, k)), np.zeros(n_columns)
    partial = np.flatnonzero((rate > 0) & (rate < 1))
    intercept[partial] = _logit(rate[partial])  # no latent space: the rate alone
    if len(partial) and k:
        rows = np.arange(n_rows)
        if n_rows > REGRESSION_ROWS:  # seeded: the same rows on every fit
            rows = np.random.default_rng(0).choice(n_rows, REGRESSION_ROWS, False)
        mu = encode_mean(module, values[rows])
        for j in partial:
            if 0 < missing[rows, j].sum() < len(rows):  # both outcomes drawn
                coef[j], intercept[j] = _regression(mu, missing[rows, j], w[rows])
    return {"rate": rate, "coef": coef, "intercept": intercept, "count": total}


def _regression(
    mu: np.ndarray, missing: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, float]:
    """Logistic regression of a column's holes on the rows' posterior means."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(mu, missing, sample_weight=w)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def pooled(
    before: dict[str, np.ndarray] | None, batch: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Pool a stream's hole model: rates over every batch, the rest the batch's.

    The regression is the latest batch's (the latent space moves between
    batches), with its intercept moved to the pooled rate; a column with holes
    before but none in this batch keeps its rate, with no relation to z.
    """
    if before is None:
        return batch
    count = before["count"] + batch["count"]
    rate = (before["count"] * before["rate"] + batch["count"] * batch["rate"]) / count
    coef, intercept = batch["coef"].copy(), batch["intercept"].copy()
    fitted = (batch["rate"] > 0) & (batch["rate"] < 1)
    partial = (rate > 0) & (rate < 1)
    # The batch's log-odds shift to the pooled rate's.
    shift = np.zeros_like(rate)
    shift[fitted & partial] = _logit(rate[fitted & partial]) - _logit(
        batch["rate"][fitted & partial]
    )
    intercept = np.where(fitted & partial, intercept + shift, 0.0)
    intercept[partial & ~fitted] = _logit(rate[partial & ~fitted])
    coef[~(fitted & partial)] = 0.0
    return {"rate": rate, "coef": coef, "intercept": intercept, "count": count}


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def draw_holes(
    model: dict[str, np.ndarray], z: torch.Tensor, generator: torch.Generator
) -> np.ndarray:
    """Draw which entries of generated rows are missing: (n_rows, n_columns)."""
    rate = torch.as_tensor(model["rate"], dtype=z.dtype, device=z.device)
    coef = torch.as_tensor(model["coef"], dtype=z.dtype, device=z.device)
    intercept = torch.as_tensor(model["intercept"], dtype=z.dtype, device=z.device)
    p = torch.sigmoid(z @ coef.T + intercept)
    p = torch.where(rate <= 0, 0.0, torch.where(rate >= 1, 1.0, p))
    return torch.bernoulli(p, generator=generator).bool().cpu().numpy()


def with_holes(codec: TableCodec, table: Any, holes: np.ndarray) -> Any:
    """Set the drawn holes (grouped column order) missing in a decoded table."""
    if not holes.any():
        return table
    table_order = np.empty_like(holes)
    table_order[:, codec.order] = holes
    if isinstance(table, np.ndarray):
        if table.dtype.kind != "f":
            table = table.astype(object)
            table[table_order] = None
        else:
            table[table_order] = np.nan
        return table
    for i, name in enumerate(table.columns):
        if table_order[:, i].any():
            table[name] = table[name].mask(table_order[:, i])
    return table
