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
say) carried by the latent point. A column keeps its regression only where a
likelihood-ratio test against its rate alone rejects at ``HOLE_TEST`` (chi^2
with one degree of freedom per latent dimension): holes that come at random
(MCAR) give regressions of noise, which would move ``VAEImputer``'s weights
for nothing.

With it the model is one of rows and their holes, p(x, m, z) = p(z) p(x | z)
p(m | z), and ``VAEImputer`` conditions on both: its importance weights
include log p(m | z) (``log_prob``), so that which entries are missing says
something about the values they hide when the holes depend on them (missing
not at random, through the latent point). ``fit`` fits it on its rows (the
regressions on at most ``REGRESSION_ROWS`` of them), a dask fit on its set-up
sample (as the latent attributes), ``partial_fit`` on each batch (see
``pooled``).

The model is a dict of arrays (``hole_model``), in the codec's grouped column
order: ``rate`` (n_columns,), the training share missing; ``coef``
(n_columns, n_components) and ``intercept`` (n_columns,), zero for a column
whose rate is 0 or 1 (never or always missing: nothing to regress);
``count``, the weighted rows the rates are over (for ``partial_fit`` to pool);
``pvalue`` (n_columns,), the test's p-value, 1 where no regression was kept or
fitted (absent from models saved before the test, whose regressions are
untested and which ``VAEImputer`` does not condition on).
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

KEYS = ("rate", "coef", "intercept", "count")  # of the model's dict (and "pvalue")
# A column's regression is kept when its likelihood-ratio test against the rate
# alone rejects at this level. On the fitted models of `make impute`'s cells
# with entries removed at random, no column kept one on chile at 10% or credit
# at 30% (p-values 0.049-0.98), one of eight on chile at 30% (p = 0.003: about
# the 1% a test at this level rejects by chance), and titanic at 30% kept none
# (its `age`, whose real holes depend on the class, p = 0.015); on the MNAR cells
# of titanic, credit and chile (holes depending on the values) every column
# did, with p-values from 0.004 to 1e-37.
HOLE_TEST = 0.01
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
    pvalue = np.ones(n_columns)
    partial = np.flatnonzero((rate > 0) & (rate < 1))
    intercept[partial] = _logit(rate[partial])  # no latent space: the rate alone
    if len(partial) and k:
        rows = np.arange(n_rows)
        if n_rows > REGRESSION_ROWS:  # seeded: the same rows on every fit
            rows = np.random.default_rng(0).choice(n_rows, REGRESSION_ROWS, False)
        mu = encode_mean(module, values[rows])
        for j in partial:
            if 0 < missing[rows, j].sum() < len(rows):  # both outcomes drawn
                fit = _regression(mu, missing[rows, j], w[rows])
                if fit[2] <= HOLE_TEST:
                    coef[j], intercept[j], pvalue[j] = fit
    return {
        "rate": rate,
        "coef": coef,
        "intercept": intercept,
        "count": total,
        "pvalue": pvalue,
    }


def _regression(
    mu: np.ndarray, missing: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """Logistic regression of a column's holes on the rows' posterior means.

    Returns its coefficients, its intercept and the p-value of its
    likelihood-ratio test against the column's weighted rate alone (chi^2 with
    one degree of freedom per latent dimension; the weights scaled to mean 1, so
    that the statistic counts rows, not units of weight).
    """
    from scipy.stats import chi2
    from sklearn.linear_model import LogisticRegression

    # Scaled first: the penalty weighs against the weights' sum, and only their
    # ratios may matter (with unequal weights the statistic is chi^2 only
    # roughly: the rows count for less than their number).
    w = w / w.mean()
    model = LogisticRegression().fit(mu, missing, sample_weight=w)
    rate = np.clip(w @ missing / w.sum(), 1e-12, 1 - 1e-12)
    logits = mu @ model.coef_[0] + model.intercept_[0]
    # log p(missing | z) and log p(rate): log sigmoid(+-logit), stably
    fitted = -np.logaddexp(0.0, np.where(missing, -logits, logits))
    null = np.where(missing, np.log(rate), np.log1p(-rate))
    statistic = 2.0 * float(w @ (fitted - null))
    pvalue = float(chi2.sf(max(statistic, 0.0), mu.shape[1]))
    return model.coef_[0].astype(np.float64), float(model.intercept_[0]), pvalue


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
    pvalue = np.where(fitted & partial, batch["pvalue"], 1.0)
    return {
        "rate": rate,
        "coef": coef,
        "intercept": intercept,
        "count": count,
        "pvalue": pvalue,
    }


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def log_prob(
    model: dict[str, np.ndarray], z: torch.Tensor, missing: torch.Tensor
) -> torch.Tensor:
    """Return log p(m | z): holes ``missing`` (B, n_columns), draws ``z`` (K, B, k).

    Returns (K, B), up to terms that do not depend on z (a column without a
    regression adds the same log-odds at every draw).
    """
    coef = torch.as_tensor(model["coef"], dtype=z.dtype, device=z.device)
    intercept = torch.as_tensor(model["intercept"], dtype=z.dtype, device=z.device)
    logits = z @ coef.T + intercept  # (K, B, n_columns)
    sign = torch.where(missing, 1.0, -1.0).to(z.dtype)
    return -torch.nn.functional.softplus(-sign * logits).sum(dim=-1)


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
