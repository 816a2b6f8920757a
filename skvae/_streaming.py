"""Training on a stream of batches: what ``partial_fit`` keeps between calls.

The optimizer (Adam, with its moment estimates) and the random generator live
in a ``Stream`` on the estimator, so that each call continues where the last one
stopped: one pass over the batch in shuffled mini-batches, as in
``MLPClassifier.partial_fit``. No scikit-learn imports here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from ._model import VAE
from ._training import _all_finite, _snapshot, as_tensors, train_epoch


@dataclass
class Stream:
    """Training state carried from one ``partial_fit`` call to the next."""

    optimizer: torch.optim.Optimizer
    generator: torch.Generator


def new_stream(module: VAE, learning_rate: float, generator: torch.Generator) -> Stream:
    fused = next(module.parameters()).device.type in ("cpu", "cuda")
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate, fused=fused)
    return Stream(optimizer, generator)


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
    ``FloatingPointError``: the batch is not taken, and earlier batches are not
    lost.
    """
    device = next(module.parameters()).device
    saved = _snapshot(module)
    optimizer_state = copy.deepcopy(stream.optimizer.state_dict())
    generator_state = stream.generator.get_state()
    X, M = as_tensors(values, observed, device)
    W = None
    if weights is not None:
        W = torch.as_tensor(weights, dtype=torch.float32, device=device)
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
        finite = bool(_all_finite(module, total))
        if not finite:  # while the parameters are float32, as Adam's state is
            stream.optimizer.load_state_dict(optimizer_state)
    finally:
        module.double().eval()
    if not finite:
        module.load_state_dict(saved)
        stream.generator.set_state(generator_state)
        raise FloatingPointError(
            "The loss became non-finite (NaN or inf) on this batch; the model and "
            "optimizer were restored to their state before it. Try a smaller "
            "learning_rate, a larger batch_size, or check the batch for extreme "
            "values."
        )
    return total.item() / X.shape[0]
