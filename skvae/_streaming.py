"""Training on a stream of batches: what ``partial_fit`` keeps between calls.

A ``Stream`` on the estimator holds what each call continues from: the module
that trains (a float32 copy of ``module_``), the optimizer (Adam, with its moment
estimates), the random generator and the column statistics over every batch so
far. Each call is one pass over the batch in shuffled mini-batches, as in
``MLPClassifier.partial_fit``.

Two promises rest on the copy. The estimator's ``module_`` is replaced whole at
the end of a call, never changed during one, so ``transform`` and the other
methods, called from another thread while ``partial_fit`` trains, answer with the
last complete model. And a call that fails leaves everything as it was.

The column statistics follow the stream (``RunningMoments``): each batch updates
the means, scales, ranges and level frequencies, and the module is re-expressed in
the new units (``VAE.change_units``), so that what it has learned is kept while
the order of the batches no longer decides the standardisation. The latent
space and the noise variances follow too (``_follow_batch``). The first batch
sets the fit up as ``fit`` does (``_setup``); ``first_batch``, ``next_batch`` and
``stream_batch`` return attributes for the estimator to take, and set nothing on
it.
"""

from __future__ import annotations

import copy
import logging
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._holes import hole_model, pooled
from ._inference import encode_checked, inference_threads, latent_attributes
from ._model import VAE
from ._setup import (
    budget,
    codec_attributes,
    new_module,
    prepare,
    read_rows,
    setup_attributes,
)
from ._tabular import CONTINUOUS, RunningMoments, TableCodec
from ._threads import torch_threads, training_threads, used_threads
from ._training import all_finite, as_tensors, make_optimizer, snapshot, train_epoch
from ._validation import seed_from, user_stacklevel, validate_table
from ._weights import check_weights, take_rows

logger = logging.getLogger(__name__)


@dataclass
class Stream:
    """Training state carried from one ``partial_fit`` call to the next.

    ``module`` is the float32 copy that trains; ``moments`` the column statistics
    over every batch so far (None: not started, see ``start_moments``).
    """

    module: VAE
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    moments: RunningMoments | None = None


def new_stream(
    module: VAE,
    learning_rate: float,
    generator: torch.Generator,
    moments: RunningMoments | None = None,
) -> Stream:
    """Return a stream training a float32 copy of ``module`` with a new Adam."""
    trained = copy.deepcopy(module).float().train()
    return Stream(trained, make_optimizer(trained, learning_rate), generator, moments)


def published(stream: Stream) -> VAE:
    """Return the stream's module as the estimator holds it: a float64 copy.

    float64 for batch-invariant inference; a copy, so that training never
    touches the model the estimator answers with.
    """
    return copy.deepcopy(stream.module).double().eval()


def stream_epoch(
    stream: Stream,
    values: np.ndarray,
    observed: np.ndarray,
    batch_size: int,
    beta: float,
    weights: np.ndarray | None = None,
) -> float:
    """One pass over a batch; return its negative ELBO in nats per row.

    ``weights`` (n_rows,), scaled to mean 1, weigh the rows' terms (None: all 1).

    A non-finite loss restores the weights, the optimizer and the generator from
    before the call and raises ``FloatingPointError``; any other exception (a
    ``KeyboardInterrupt``, say) restores them too before it propagates: the batch
    is taken whole or not at all, and earlier batches are never lost.
    """
    module = stream.module
    device = next(module.parameters()).device
    saved = _saved(stream)
    X, M = as_tensors(values, observed, device)
    W = None
    if weights is not None:
        W = torch.as_tensor(weights, dtype=torch.float32, device=device)

    def restore() -> None:
        _restore(stream, saved)

    try:
        total = train_epoch(
            module,
            stream.optimizer,
            X,
            min(batch_size, X.shape[0]),
            beta,
            stream.generator,
            M,
            W=W,
        )
        finite = bool(all_finite(module, total))
    except BaseException:
        restore()
        raise
    if not finite:
        restore()
        raise FloatingPointError(
            "The loss became non-finite (NaN or inf) on this batch; the model and "
            "optimizer were restored to their state before it. Try a smaller "
            "learning_rate, a larger batch_size, or check the batch for extreme "
            "values."
        )
    return total.item() / X.shape[0]


@dataclass
class Batch:
    """An encoded batch, and what taking it changes in the column statistics.

    ``moments`` are the statistics with this batch added; ``units`` the
    (factor, shift, constant) that re-express the module in the new
    standardisation (None: unchanged; see ``VAE.change_units``).
    """

    values: np.ndarray
    observed: np.ndarray
    weights: np.ndarray | None
    moments: RunningMoments
    units: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def _saved(stream: Stream) -> tuple[dict, dict, torch.Tensor, tuple | None, tuple]:
    """Copy what a batch changes in a stream: weights to inputs' training range.

    The weights, the optimizer's state, the generator, the likelihood's grid
    and the inputs' training range (``VAE.seen_range``).
    """
    return (
        snapshot(stream.module),
        copy.deepcopy(stream.optimizer.state_dict()),
        stream.generator.get_state(),
        getattr(stream.module.likelihood.continuous, "grid", None),
        stream.module.seen_range,
    )


def _restore(
    stream: Stream, saved: tuple[dict, dict, torch.Tensor, tuple | None, tuple]
) -> None:
    weights, optimizer_state, generator_state, grid, seen = saved
    stream.optimizer.load_state_dict(optimizer_state)
    stream.module.load_state_dict(weights)
    stream.generator.set_state(generator_state)
    if grid is not None:
        stream.module.likelihood.set_grid(*grid)
    if seen is not None:
        stream.module.set_seen_range(*seen)


def stream_state(stream: Stream) -> tuple[tuple, RunningMoments | None]:
    """Copy what a batch changes in ``stream``, for ``restore_stream``.

    For a caller that must undo a batch after ``stream_batch`` returned (a
    callback that fails at the end of ``partial_fit``).
    """
    return _saved(stream), stream.moments


def restore_stream(stream: Stream, state: tuple[tuple, RunningMoments | None]) -> None:
    """Put ``stream`` back as ``stream_state`` copied it."""
    saved, stream.moments = state
    _restore(stream, saved)


def first_batch(
    estimator: Any, X: Any, sample_weight: Any = None
) -> tuple[dict, Batch]:
    """Set up a stream on its first batch: the attributes to start from, the batch.

    The codec is fitted to this batch and the model starts at its PCA (see
    ``_setup``); the module, optimizer and generator go into a new ``Stream``.
    Counters start at zero: ``stream_batch`` counts the batch.
    """
    rows = read_rows(estimator, X, sample_weight=sample_weight)
    setup = prepare(estimator, rows, stream=True)
    start, _ = as_tensors(setup.values, setup.observed, setup.device)
    module = new_module(estimator, setup, start, weights=setup.weights)
    attributes = setup_attributes(estimator, setup) | {
        "module_": module,
        "_stream": new_stream(module, estimator.learning_rate, setup.generator),
        "n_samples_seen_": 0,
        "n_iter_": 0,
        "loss_curve_": [],
    }
    moments = RunningMoments.of_batch(
        setup.codec, setup.values, setup.observed, _mean_one(setup.weights)
    )
    return attributes, Batch(setup.values, setup.observed, setup.weights, moments)


def next_batch(
    estimator: Any, fitted: dict[str, Any], X: Any, sample_weight: Any = None
) -> tuple[dict[str, Any], Batch | None]:
    """Validate a later batch and update the column statistics with it.

    ``fitted`` holds the current ``_codec``, ``module_``, ``_stream`` (None after
    ``fit`` or loading: a new stream starts from ``module_``), ``n_iter_``,
    ``n_samples_seen_`` and ``loss_curve_``. Returns them with the codec of the
    updated statistics, and the batch encoded by it. Rows of weight 0 are left
    out; levels the codec does not know are missing values, with a warning
    (an error with ``handle_unknown="error"``). A batch of no rows (a
    partition a filter left empty), or of rows all of weight 0, returns
    ``fitted`` as it is and no batch.
    """
    X = validate_table(estimator, X, reset=False)
    if X.shape[0] == 0:
        if np.ndim(sample_weight) and np.size(sample_weight):  # a scalar: any
            raise ValueError(
                f"sample_weight has {np.size(sample_weight)} entries for a batch "
                "of 0 rows."
            )
        return fitted, None
    if sample_weight is not None and np.ndim(sample_weight) == 1:
        given = np.asarray(sample_weight)
        if len(given) == X.shape[0] and given.dtype.kind in "biuf" and not given.any():
            return fitted, None  # every row of weight 0: left out, as in a batch
    weights = check_weights(sample_weight, X)
    keep = np.flatnonzero(weights > 0)
    X, weights = take_rows(X, keep), weights[keep]
    if np.all(weights == weights[0]):
        weights = None
    codec, stream = fitted["_codec"], fitted["_stream"]
    if stream is None:
        seed = seed_from(estimator.random_state)
        device = next(fitted["module_"].parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        stream = new_stream(fitted["module_"], estimator.learning_rate, generator)
    moments = stream.moments
    if moments is None:  # after fit or an older saved model: the codec's
        moments = RunningMoments.of_codec(codec, fitted["n_samples_seen_"])
    before, moments = moments, moments.updated(codec, X, _mean_one(weights))
    new_codec = moments.codec(codec, estimator.scaling)
    units = None
    if codec.standardize and codec.n_continuous:
        mean = codec.continuous_attribute("mean")
        scale = codec.continuous_attribute("scale")
        new_mean = new_codec.continuous_attribute("mean")
        new_scale = new_codec.continuous_attribute("scale")
        # x_old = (x - m) / s and x_new = (x - m') / s': x_old = a x_new + c.
        units = (new_scale / scale, (new_mean - mean) / scale, before.std == 0)
    values, observed = encode_checked(
        new_codec, X, estimator.likelihood, estimator.handle_unknown
    )
    if estimator.handle_unknown == "ignore":
        _warn_unknown(codec, X)
    _warn_drift(codec, before, moments)
    batch = Batch(values, observed, weights, moments, units)
    return {**fitted, "_codec": new_codec, "_stream": stream}, batch


def _mean_one(weights: np.ndarray | None) -> np.ndarray | None:
    """Weights scaled to mean 1, so that a batch counts as many rows as it has."""
    return None if weights is None else weights / weights.mean()


def _warn_unknown(codec: TableCodec, X: Any) -> None:
    """Warn about levels of a batch that the first batch did not set up."""
    unknown = codec.unknown_levels(X)
    if not unknown:
        return
    found = "; ".join(
        f"{name!r}: {levels[:5]}" for name, levels in list(unknown.items())[:5]
    )
    warnings.warn(
        f"This batch holds levels the model was not set up with ({found}); "
        "partial_fit treats them as missing values. The levels of a column are "
        "fixed by the first batch: give it every level, or declare them before the "
        "first call with a pandas CategoricalDtype (X[col] = X[col].astype("
        "pd.CategoricalDtype(all_levels))).",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


# A batch whose mean lies this many standard deviations of the rows before it
# from theirs (and more than twice as many standard errors of its own mean) is
# not a draw from the same rows: at 6 standard errors, i.i.d. batches of a
# Gaussian column give a false warning once in 500 million.
DRIFT_SDS = 3.0


def _warn_drift(codec: TableCodec, before: RunningMoments, after: RunningMoments):
    """Warn when a batch's column means are far from those of the rows before it."""
    n_before, n_batch = before.count, after.count - before.count
    usable = (n_before > 0) & (n_batch > 0) & (before.std > 0)
    if not usable.any():
        return
    with np.errstate(invalid="ignore", divide="ignore"):
        batch_mean = (after.count * after.mean - n_before * before.mean) / n_batch
        distance = np.abs(batch_mean - before.mean) / before.std
        far = usable & (distance > np.maximum(DRIFT_SDS, 6 / np.sqrt(n_batch)))
    if not far.any():
        return
    j = int(np.argmax(np.where(far, distance, -np.inf)))
    name = codec.columns[codec.positions(CONTINUOUS)[j]].name
    warnings.warn(
        f"Column {name!r}: this batch's mean ({batch_mean[j]:.4g}) lies "
        f"{distance[j]:.0f} standard deviations from that of the "
        f"{n_before[j]:.0f} rows before it. The column statistics follow the "
        "stream, but the model learns by stochastic gradient steps and favours "
        "what the latest batches show: for a model that does not depend on the "
        "order of the rows, shuffle them before splitting them into batches "
        "(e.g. X.sample(frac=1, random_state=0)), or fit them in memory with fit.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def _follow_batch(stream: Stream, batch: Batch, n_seen: int) -> None:
    """Move the latent space and the noise variances to include a new batch.

    Gradient steps change what a model has learned slowly, one learning rate at
    a time: a batch unlike those before it (another species, a later range of
    a sorted column) would be encoded far out in the latent space, and modelled
    with the noise of the rows before it, for many batches. Two parts of the
    model have a closed form instead, at any stationary point of the ELBO, and
    follow the stream as the column statistics do, pooling the rows seen so far
    (``n_seen``, at that point) with the batch:

    - the latent space, where the encoded rows' mean is 0 and their second
      moment, E[mu^2 + sigma^2], is 1 per dimension (a shift or scale of z the
      decoder can undo would otherwise lower the KL). The batch's moments pooled
      with those of the rows before it (0 and 1) give the shift and scale that
      ``VAE.change_latent`` takes out;
    - the Gaussian noise variance of each continuous column, the mean squared
      residual ``(x - decode(z))^2`` over rows and posterior draws: the current
      variance (the rows before) pooled with the batch's residuals over its
      observed entries. At a censored column's point mass, whose value stands
      for everything beyond the bound, the squared residual's expectation
      under the censored Gaussian takes its place (an EM step for the
      variance, ``GaussianLikelihood.squared_residuals``).

    Each is an exact maximiser of the ELBO over its parameters for the pooled
    rows when the rest of the model is held fixed (the latent's, up to the
    posterior variance's soft bound, see ``change_latent``); gradient steps on
    the batch follow. A batch like the rows before it changes nothing but
    noise of order 1/(rows seen).
    """
    module = stream.module
    dtype = next(module.parameters()).dtype
    device = next(module.parameters()).device
    x = torch.as_tensor(batch.values, dtype=dtype, device=device)
    weights = np.ones(len(x)) if batch.weights is None else _mean_one(batch.weights)
    w = weights / weights.sum()
    n = len(x)
    if module.target is None:
        with torch.no_grad():
            mu, log_var = module.encode(x)
        mu = mu.double().cpu().numpy()
        var = log_var.exp().double().cpu().numpy()
        mean = w @ mu
        second = w @ (np.square(mu) + var)
        shift = n / (n_seen + n) * mean
        moment = (n_seen + n * second) / (n_seen + n)
        scale = np.sqrt(np.maximum(moment - np.square(shift), 1e-12))
        module.change_latent(shift, scale, x)
    likelihood = module.likelihood
    c = likelihood.n_continuous
    if not c or not hasattr(likelihood.continuous, "scale_variance"):
        return
    gaussian = likelihood.continuous
    with torch.no_grad():
        mu, log_var = module.encode(x)
        eps = torch.randn(mu.shape, generator=stream.generator, device=device)
        out = module.decode(module.reparameterize(mu, log_var, eps))
        residual = gaussian.squared_residuals(x[:, :c], out[:, :c])
        residual = residual.double().cpu().numpy()
        variance = gaussian.log_var().exp().double().cpu().numpy()
    informative = ~np.isnan(residual)  # not at both masses of a constant
    residual = np.where(informative, residual, 0.0)
    observed = batch.observed[:, :c] * informative * weights[:, None]
    count = observed.sum(axis=0)  # weights have mean 1: rows' worth per column
    total = n_seen * variance + (observed * residual).sum(axis=0)
    factor = torch.as_tensor(
        total / (n_seen + count) / variance, dtype=dtype, device=device
    )
    gaussian.scale_variance(factor)


def stream_batch(
    estimator: Any, fitted: dict[str, Any], batch: Batch
) -> dict[str, Any]:
    """Train one pass over an encoded batch; return the attributes it updates.

    ``fitted`` holds the current ``_codec`` (the batch's), ``_stream``,
    ``n_iter_``, ``n_samples_seen_``, ``loss_curve_`` and ``_holes`` (the hole
    model so far, None if none; see ``_holes.pooled``). Nothing is changed in
    place but the stream, whose module is first re-expressed in the batch's
    units; when the batch fails, the stream is restored whole.
    """
    stream, codec = fitted["_stream"], fitted["_codec"]
    n_iter = fitted["n_iter_"]
    beta = estimator.beta
    if estimator.kl_warmup:
        beta *= min(1.0, (n_iter + 1) / estimator.kl_warmup)
    batch_size, _ = budget(estimator, batch.values.shape[0])
    weights = _mean_one(batch.weights)
    saved = _saved(stream)
    try:  # up to the last change of the stream: any failure restores it whole
        if batch.units is not None:
            stream.module.change_units(*batch.units)
        stream.module.likelihood.set_grid(*codec.likelihood_grid())
        stream.module.set_seen_range(*codec.seen_range())
        if fitted["n_samples_seen_"]:
            _follow_batch(stream, batch, fitted["n_samples_seen_"])
        n_threads = training_threads(estimator.n_threads, stream.module, batch_size)
        with torch_threads(n_threads):
            loss = stream_epoch(
                stream, batch.values, batch.observed, batch_size, beta, weights
            )
        module = published(stream)
        with inference_threads(estimator.n_threads, module, len(batch.values)):
            latent = latent_attributes(module, batch.values, weights)
            holes = hole_model(module, batch.values, batch.observed, weights)
    except BaseException:
        _restore(stream, saved)  # the units too
        raise
    stream.moments = batch.moments  # last: nothing after it can fail
    jacobian = np.average(
        codec.log_jacobian(batch.observed, batch.values), weights=weights
    )
    message = (
        f"partial_fit (n_iter_ {n_iter + 1}): {batch.values.shape[0]} rows, "
        f"loss {loss + jacobian:.4g} (negative ELBO per row)"
    )
    logger.info(message)
    if estimator.verbose:  # one line a call: a call is one pass, no bar
        print(f"VAE {message}", file=sys.stderr)
    return {
        **codec_attributes(codec),
        "module_": module,
        "_stream": stream,
        "n_samples_seen_": fitted["n_samples_seen_"] + batch.values.shape[0],
        "n_iter_": n_iter + 1,
        "n_threads_": used_threads(n_threads),
        "loss_curve_": [*fitted["loss_curve_"], loss + jacobian],
        "validation_scores_": None,
        "best_validation_score_": None,
        "_holes": pooled(fitted.get("_holes"), holes),
        **latent,
    }
