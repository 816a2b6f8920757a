"""The training loop as plain functions over tensors; no scikit-learn imports.

Mini-batches are taken by index from tensors already on the device: no DataLoader,
no per-sample Python work, and one host synchronisation per epoch (not per step).
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ._model import VAE

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Settings of one training run; see ``VAETransformer`` for their meaning."""

    max_iter: int
    batch_size: int
    learning_rate: float
    beta: float
    kl_warmup: int
    n_iter_no_change: int
    tol: float
    verbose: bool = False
    # Added to the per-row losses shown with ``verbose``, to give them in the units
    # of the data (the Jacobian of the standardisation), as ``loss_curve_`` is.
    offset_train: float = 0.0
    offset_val: float = 0.0


@dataclass
class TrainResult:
    """What a training run leaves behind. Losses are negative ELBOs in nats per row."""

    loss_curve: list[float] = field(default_factory=list)
    validation_losses: list[float] = field(default_factory=list)
    # Validation loss of the weights kept: the best epoch's, or the start's.
    best_validation_loss: float | None = None
    n_iter: int = 0
    converged: bool = False
    interrupted: bool = False


def _snapshot(module: VAE) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _all_finite(module: VAE, loss: torch.Tensor) -> torch.Tensor:
    """One boolean tensor: the loss and every parameter are finite (no sync yet)."""
    flags = [torch.isfinite(loss)]
    flags += [torch.isfinite(p).all() for p in module.parameters()]
    return torch.stack(flags).all()


def _beta_at(config: TrainConfig, epoch: int) -> float:
    """KL weight in ``epoch`` (0-based): a linear ramp over ``kl_warmup`` epochs."""
    if config.kl_warmup == 0:
        return config.beta
    return config.beta * min(1.0, (epoch + 1) / config.kl_warmup)


def train_epoch(
    module: VAE,
    optimizer: torch.optim.Optimizer,
    X: torch.Tensor,
    batch_size: int,
    beta: float,
    generator: torch.Generator,
    M: torch.Tensor | None = None,
) -> torch.Tensor:
    """One pass over ``X`` in shuffled mini-batches; the summed negative ELBO (0-d).

    ``M`` (n_samples, n_columns) holds 1 for observed entries and 0 for missing
    ones, which the reconstruction term leaves out; None means all observed.
    """
    module.train()
    n_samples = X.shape[0]
    order = torch.randperm(n_samples, generator=generator, device=X.device)
    n_components = module.encoder.mu.out_features
    eps_all = torch.randn(
        (n_samples, n_components), generator=generator, device=X.device
    )
    total = torch.zeros((), device=X.device)
    for start in range(0, n_samples, batch_size):
        index = order[start : start + batch_size]
        batch = X.index_select(0, index)  # (B, D)
        mask = None if M is None else M.index_select(0, index)
        eps = eps_all[start : start + batch_size]
        nll, kl = module.loss_terms(batch, eps, mask)
        kl_row = kl.sum(dim=1)
        per_row = nll + kl_row
        loss = per_row.mean() if beta == 1.0 else (nll + beta * kl_row).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += per_row.detach().sum()
    return total


def as_tensors(
    values: np.ndarray, observed: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return encoded rows and their observed mask as float32 training tensors.

    The mask is None when every entry is observed, which spares the masking.
    """
    X = torch.tensor(values, dtype=torch.float32, device=device)
    if observed.all():
        return X, None
    return X, torch.tensor(observed, dtype=torch.float32, device=device)


class Partitions:
    """Training rows that arrive in parts, for data that do not fit in memory.

    ``load(i)`` returns part ``i`` as tensors on the device: its rows (B, D) and
    their mask of observed entries (or None). An epoch visits the parts in a new
    random order and each part's rows in shuffled mini-batches; only one part is
    in memory at a time.
    """

    def __init__(
        self,
        load: Callable[[int], tuple[torch.Tensor, torch.Tensor | None]],
        n_parts: int,
        n_rows: int,
    ) -> None:
        self.load, self.n_parts, self.n_rows = load, n_parts, n_rows

    def epoch(
        self,
        module: VAE,
        optimizer: torch.optim.Optimizer,
        batch_size: int,
        beta: float,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """One pass over every part; the summed negative ELBO (0-d)."""
        order = torch.randperm(
            self.n_parts, generator=generator, device=generator.device
        )
        total = None
        for i in order.tolist():
            X, M = self.load(i)
            part = train_epoch(module, optimizer, X, batch_size, beta, generator, M)
            total = part if total is None else total + part
        return total


@torch.no_grad()
def validation_loss(
    module: VAE, X: torch.Tensor, eps: torch.Tensor, M: torch.Tensor | None = None
) -> torch.Tensor:
    """Return the summed negative ELBO of ``X`` with fixed noise (a draw per row)."""
    module.eval()
    nll, kl = module.loss_terms(X, eps, M)
    return (nll + kl.sum(dim=1)).sum()


def train(
    module: VAE,
    X_train: torch.Tensor | Partitions,
    X_val: torch.Tensor | None,
    config: TrainConfig,
    generator: torch.Generator,
    M_train: torch.Tensor | None = None,
    M_val: torch.Tensor | None = None,
) -> TrainResult:
    """Fit ``module`` by minimising the negative ELBO with Adam.

    Without validation data, training stops once the training loss has not improved
    by ``tol`` for ``n_iter_no_change`` epochs, and the final weights are kept. With
    validation data, the same rule applies to the validation loss and the weights of
    the best validation epoch are restored.

    A non-finite loss or parameter restores the last good weights and stops with a
    warning, or raises ``FloatingPointError`` when no epoch finished cleanly. A
    ``KeyboardInterrupt`` keeps the best weights so far and warns. ``M_train`` and
    ``M_val`` mark observed entries (see ``train_epoch``); ``X_train`` may be a
    ``Partitions`` source, which brings its own masks.
    """
    result = TrainResult()
    device = next(module.parameters()).device
    use_fused = device.type in ("cpu", "cuda")
    optimizer = torch.optim.Adam(
        module.parameters(), lr=config.learning_rate, fused=use_fused
    )
    n_train = X_train.n_rows if isinstance(X_train, Partitions) else X_train.shape[0]
    val_eps = None
    if X_val is not None:
        n_components = module.encoder.mu.out_features
        val_eps = torch.randn(
            (X_val.shape[0], n_components), generator=generator, device=X_val.device
        )
    best_loss, best_state, last_good_state = math.inf, None, None
    if X_val is not None:
        # The starting point (PCA's solution, when the model starts there) is a
        # candidate too: early stopping never returns a worse validation loss.
        initial = validation_loss(module, X_val, val_eps, M_val).item()
        initial /= X_val.shape[0]
        if math.isfinite(initial):
            best_loss, best_state = initial, _snapshot(module)
            result.best_validation_loss = initial
    stalled = 0
    # No time estimate: early stopping usually ends training long before max_iter.
    progress = tqdm(
        range(config.max_iter),
        disable=not config.verbose,
        unit="epoch",
        bar_format="{desc}epoch {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
        desc="VAE ",
    )
    rows_per_epoch = n_train
    started = time.perf_counter()
    epoch = 0
    try:
        for epoch in progress:
            beta = _beta_at(config, epoch)
            if isinstance(X_train, Partitions):
                total = X_train.epoch(
                    module, optimizer, config.batch_size, beta, generator
                )
            else:
                total = train_epoch(
                    module,
                    optimizer,
                    X_train,
                    config.batch_size,
                    beta,
                    generator,
                    M_train,
                )
            finite = _all_finite(module, total)
            if X_val is not None:
                val_total = validation_loss(module, X_val, val_eps, M_val)
                finite = finite & torch.isfinite(val_total)
            if not bool(finite):  # the one host synchronisation of the epoch
                _handle_non_finite(module, epoch, best_state or last_good_state, config)
                break
            train_loss = total.item() / n_train
            result.loss_curve.append(train_loss)
            result.n_iter = epoch + 1
            if X_val is not None:
                monitored = val_total.item() / X_val.shape[0]
                result.validation_losses.append(monitored)
            else:
                monitored = train_loss
            last_good_state = _snapshot(module)
            if config.verbose:
                postfix = {"loss": f"{train_loss + config.offset_train:.4g}"}
                if X_val is not None:
                    postfix["val"] = f"{monitored + config.offset_val:.4g}"
                rate = rows_per_epoch * (epoch + 1) / (time.perf_counter() - started)
                postfix["rows/s"] = f"{rate:.3g}"
                progress.set_postfix(postfix, refresh=False)
            # The objective changes while the KL weight ramps up: judge progress only
            # once it is final.
            if epoch + 1 < config.kl_warmup:
                continue
            if monitored < best_loss - config.tol:
                stalled = 0
                if X_val is not None:
                    best_state = _snapshot(module)
                    result.best_validation_loss = monitored
            else:
                stalled += 1
            best_loss = min(best_loss, monitored)
            if stalled >= config.n_iter_no_change:
                result.converged = True
                _report(
                    config,
                    f"Stopped at epoch {epoch + 1}: the "
                    f"{'validation' if X_val is not None else 'training'} loss has "
                    f"not improved by tol={config.tol:g} for {config.n_iter_no_change} "
                    "epochs"
                    + (
                        f"; best validation loss {best_loss + config.offset_val:.4g}."
                        if X_val is not None
                        else "."
                    ),
                )
                break
        else:
            if config.max_iter:
                _report(config, f"Stopped at max_iter={config.max_iter} epochs.")
    except KeyboardInterrupt:
        if last_good_state is None:  # nothing finished: nothing to keep
            raise
        result.interrupted = True
        warnings.warn(
            f"Training interrupted in epoch {epoch + 1}; keeping the "
            + ("best weights so far." if best_state else "weights of the last epoch.")
            + " The estimator is fitted.",
            UserWarning,
            stacklevel=4,  # train < VAETransformer.fit < _fit_context < caller
        )
        best_state = best_state or last_good_state
    finally:
        progress.close()
    if best_state is not None and (X_val is not None or result.interrupted):
        module.load_state_dict(best_state)
    return result


def _report(config: TrainConfig, message: str) -> None:
    """Log why training stopped, and print it under the progress bar if verbose."""
    logger.info(message)
    if config.verbose:
        tqdm.write(message, file=sys.stderr)


def _handle_non_finite(
    module: VAE, epoch: int, good_state: dict | None, config: TrainConfig
) -> None:
    advice = (
        f"Try a smaller learning_rate (now {config.learning_rate:g}), a larger "
        "batch_size, or check the data for extreme values."
    )
    if good_state is None:
        raise FloatingPointError(
            f"The loss became non-finite (NaN or inf) in epoch {epoch + 1}, before any "
            f"epoch finished cleanly. {advice}"
        )
    module.load_state_dict(good_state)
    warnings.warn(
        f"The loss became non-finite (NaN or inf) in epoch {epoch + 1}; training "
        f"stopped and the last finite weights were restored. {advice}",
        RuntimeWarning,
        stacklevel=5,  # as in train, one frame deeper
    )
