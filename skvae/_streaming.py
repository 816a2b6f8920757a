"""Training on a stream of batches: what ``partial_fit`` keeps between calls.

The optimizer (Adam, with its moment estimates) and the random generator live
in a ``Stream`` on the estimator, so that each call continues where the last one
stopped: one pass over the batch in shuffled mini-batches, as in
``MLPClassifier.partial_fit``. The first batch sets the fit up as ``fit`` does
(``_setup``); ``first_batch``, ``next_batch`` and ``stream_batch`` return
attributes for the estimator to take, and set nothing on it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._inference import encode_checked, latent_attributes
from ._model import VAE
from ._setup import budget, new_module, prepare, read_rows, setup_attributes
from ._tabular import TableCodec
from ._training import all_finite, as_tensors, make_optimizer, snapshot, train_epoch
from ._validation import seed_from, validate_table
from ._weights import check_weights, take_rows


@dataclass
class Stream:
    """Training state carried from one ``partial_fit`` call to the next."""

    optimizer: torch.optim.Optimizer
    generator: torch.Generator


def new_stream(module: VAE, learning_rate: float, generator: torch.Generator) -> Stream:
    """Return a stream with a new Adam optimizer over ``module``."""
    return Stream(make_optimizer(module, learning_rate), generator)


def stream_epoch(
    module: VAE,
    stream: Stream,
    values: np.ndarray,
    observed: np.ndarray,
    batch_size: int,
    beta: float,
    weights: np.ndarray | None = None,
) -> float:
    """One pass over a batch; return its negative ELBO in nats per row.

    ``weights`` (n_rows,), scaled to mean 1, weigh the rows' terms (None: all 1).

    The module trains in float32 and is handed back in float64, eval mode, for
    batch-invariant inference. A non-finite loss restores the weights, the
    optimizer and the generator from before the call and raises
    ``FloatingPointError``; any other exception (a ``KeyboardInterrupt``, say)
    restores them too before it propagates: the batch is taken whole or not at
    all, and earlier batches are never lost.
    """
    device = next(module.parameters()).device
    saved = snapshot(module)
    optimizer_state = copy.deepcopy(stream.optimizer.state_dict())
    generator_state = stream.generator.get_state()
    X, M = as_tensors(values, observed, device)
    W = None
    if weights is not None:
        W = torch.as_tensor(weights, dtype=torch.float32, device=device)

    def restore() -> None:
        # The optimizer first, while the parameters are float32 as its state is.
        stream.optimizer.load_state_dict(optimizer_state)
        module.double().eval()
        module.load_state_dict(saved)
        stream.generator.set_state(generator_state)

    module.float()
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
    module.double().eval()
    return total.item() / X.shape[0]


def first_batch(
    estimator: Any, X: Any, sample_weight: Any = None
) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Set up a stream on its first batch: the attributes to start from, the batch.

    The codec is fitted to this batch and the model starts at its PCA (see
    ``_setup``); the optimizer and generator go into a new ``Stream``. Counters
    start at zero: ``stream_batch`` counts the batch, returned encoded as
    (values, observed, weights or None).
    """
    setup = prepare(estimator, read_rows(estimator, X, sample_weight=sample_weight))
    start, _ = as_tensors(setup.values, setup.observed, setup.device)
    module = new_module(estimator, setup, start, weights=setup.weights)
    attributes = setup_attributes(estimator, setup) | {
        "module_": module,
        "_stream": new_stream(module, estimator.learning_rate, setup.generator),
        "n_samples_seen_": 0,
        "n_iter_": 0,
        "loss_curve_": [],
    }
    return attributes, (setup.values, setup.observed, setup.weights)


def next_batch(
    estimator: Any, codec: TableCodec, X: Any, sample_weight: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate and encode a later batch: (values, observed, weights or None).

    Rows of weight 0 are left out; unknown levels are an error (``strict``).
    """
    X = validate_table(estimator, X, reset=False)
    weights = check_weights(sample_weight, X)
    keep = np.flatnonzero(weights > 0)
    X, weights = take_rows(X, keep), weights[keep]
    if np.all(weights == weights[0]):
        weights = None
    values, observed = encode_checked(
        codec, X, estimator.likelihood, estimator.handle_unknown, strict=True
    )
    return values, observed, weights


def stream_batch(
    estimator: Any,
    fitted: dict[str, Any],
    codec: TableCodec,
    batch: tuple[np.ndarray, np.ndarray, np.ndarray | None],
) -> dict[str, Any]:
    """Train one pass over an encoded batch; return the attributes it updates.

    ``fitted`` holds the current ``module_``, ``_stream`` (None after ``fit`` or
    loading: a new optimizer starts), ``n_iter_``, ``n_samples_seen_`` and
    ``loss_curve_``; they are not changed in place but the module's weights and
    the stream's state, which ``stream_epoch`` restores when the batch fails.
    """
    values, observed, weights = batch
    module, stream = fitted["module_"], fitted["_stream"]
    if stream is None:
        seed = seed_from(estimator.random_state)
        device = next(module.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        stream = new_stream(module, estimator.learning_rate, generator)
    n_iter = fitted["n_iter_"]
    beta = estimator.beta
    if estimator.kl_warmup:
        beta *= min(1.0, (n_iter + 1) / estimator.kl_warmup)
    batch_size, _ = budget(estimator, values.shape[0])
    if weights is not None:
        weights = weights / weights.mean()
    loss = stream_epoch(module, stream, values, observed, batch_size, beta, weights)
    jacobian = np.average(codec.log_jacobian(observed), weights=weights)
    return {
        "module_": module,
        "_stream": stream,
        "n_samples_seen_": fitted["n_samples_seen_"] + values.shape[0],
        "n_iter_": n_iter + 1,
        "loss_curve_": [*fitted["loss_curve_"], loss + jacobian],
        "validation_scores_": None,
        "best_validation_score_": None,
        **latent_attributes(module, values, weights),
    }
