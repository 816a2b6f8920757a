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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ._model import VAE, fit_class_prior

logger = logging.getLogger(__name__)

# On data with more training rows than this, an epoch is split into evaluation
# periods of about this many rows: early stopping checks the validation loss and
# ``loss_curve_`` gains an entry after each period, so a fit on ten million rows
# can stop within its first epoch.
PERIOD_ROWS = 2**20
# Early stopping holds out at most this many rows: enough to judge the loss to a
# fraction of a nat, and cheap to evaluate after every period.
MAX_VALIDATION_ROWS = 10_000
# Smallest and largest mini-batch of ``batch_size="auto"``.
AUTO_BATCH_RANGE = (256, 4096)
# ``max_iter="auto"``: 200 epochs, or as many as this many optimizer steps take.
AUTO_EPOCHS, AUTO_STEPS = 200, 10_000


def auto_batch_size(n_rows: int) -> int:
    """Return the mini-batch size of ``batch_size="auto"`` for ``n_rows`` rows.

    Twice the square root of the number of rows, rounded to a power of two and
    kept within ``AUTO_BATCH_RANGE`` (and ``n_rows``): 256 up to about 20,000
    rows, 2,048 at a million, 4,096 from about four million. Larger batches run
    the matrix products closer to the machine's GEMM throughput; on small data,
    smaller ones take more steps per epoch.
    """
    low, high = AUTO_BATCH_RANGE
    size = 2 ** round(math.log2(2 * math.sqrt(max(n_rows, 1))))
    return int(min(max(size, low), high, max(n_rows, 1)))


def auto_max_iter(n_rows: int, batch_size: int) -> int:
    """Return the epoch budget of ``max_iter="auto"`` for ``n_rows`` rows.

    200 epochs, or enough epochs for ``AUTO_STEPS`` optimizer steps when an
    epoch has fewer than 50 of them (small data: 1,600 rows at batch 256 get
    1,429 epochs).
    """
    steps = -(-n_rows // max(batch_size, 1))
    return max(AUTO_EPOCHS, -(-AUTO_STEPS // steps))


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
class Targets:
    """Labels of the rows of one tensor, for a model with a target head.

    ``values`` holds class codes (n,) as long integers, -1 where a row has no
    label, or standardised continuous targets (n, t) with NaN where missing.
    ``weight`` is ``target_weight``: the weight of -log p(y | z) per row.
    """

    values: torch.Tensor
    weight: float
    labelled: torch.Tensor = field(init=False)  # indices of rows with a label

    def __post_init__(self) -> None:
        if self.values.dtype == torch.long:
            has_label = self.values >= 0
        else:
            has_label = ~torch.isnan(self.values).all(dim=1)
        self.labelled = torch.nonzero(has_label)[:, 0]

    @property
    def complete(self) -> bool:
        """Whether every row has a label: the loss then uses the batch's own."""
        return self.labelled.shape[0] == self.values.shape[0]


def _label_batches(
    targets: Targets, n_steps: int, batch_size: int, generator: torch.Generator
) -> torch.Tensor:
    """Row indices of one labelled mini-batch per step, (n_steps, size).

    For partly labelled data: each optimizer step also takes a mini-batch of
    labelled rows, cycling through them in shuffled order, so that a few
    labels among many rows weigh as much as the rows without one (as in
    Kingma et al., 2014, who train on labelled and unlabelled batches side by
    side).
    """
    labelled = targets.labelled
    n_labelled = labelled.shape[0]
    size = min(batch_size, n_labelled)
    needed = n_steps * size
    rounds = -(-needed // n_labelled)
    # One shuffle of the labelled rows per round, all drawn at once.
    keys = torch.rand((rounds, n_labelled), generator=generator, device=labelled.device)
    order = labelled[torch.argsort(keys, dim=1).reshape(-1)]
    return order[:needed].reshape(n_steps, size)


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
    order: torch.Tensor | None = None,
    W: torch.Tensor | None = None,
    targets: Targets | None = None,
) -> torch.Tensor:
    """One pass over ``X`` in shuffled mini-batches; the summed loss (0-d).

    ``M`` (n_samples, n_columns) holds 1 for observed entries and 0 for missing
    ones, which the reconstruction term leaves out; None means all observed.
    ``order`` visits only these rows, in this order (one evaluation period of a
    larger epoch); None shuffles all of them. ``W`` (n_samples,) weighs each row's
    terms (scaled to mean 1; None: all 1). With ``targets``, each step adds
    ``targets.weight`` times the mean -log p(y | z) of labelled rows: the batch's
    own when every row is labelled, else a labelled batch of its own.
    """
    if targets is not None and module.class_prior is not None:
        # The class prior follows the encoder: its exact update, once a period,
        # on the period's rows (one encoder pass over the data per epoch).
        if order is None:
            fit_class_prior(module, X, targets.values, W)
        else:
            fit_class_prior(
                module,
                X.index_select(0, order),
                targets.values.index_select(0, order),
                None if W is None else W.index_select(0, order),
            )
    module.train()
    if order is None:
        order = torch.randperm(X.shape[0], generator=generator, device=X.device)
    n_samples = order.shape[0]
    n_components = module.encoder.mu.out_features
    eps_all = torch.randn(
        (n_samples, n_components), generator=generator, device=X.device
    )
    label_batches = None
    if targets is not None and not targets.complete:
        n_steps = -(-n_samples // batch_size)
        label_batches = _label_batches(targets, n_steps, batch_size, generator)
        label_eps = torch.randn(
            (*label_batches.shape, n_components), generator=generator, device=X.device
        )
    total = torch.zeros((), device=X.device)
    for step, start in enumerate(range(0, n_samples, batch_size)):
        index = order[start : start + batch_size]
        batch = X.index_select(0, index)  # (B, D)
        mask = None if M is None else M.index_select(0, index)
        eps = eps_all[start : start + batch_size]
        nll, kl, z = module.loss_terms(batch, eps, mask)
        per_row = nll + kl
        objective = per_row if beta == 1.0 else nll + beta * kl
        if W is not None:
            w = W.index_select(0, index)
            per_row, objective = per_row * w, objective * w
        loss = objective.mean()
        if targets is not None:
            if label_batches is None:  # every row labelled: the batch's own
                y = targets.values.index_select(0, index)
                label_loss = module.label_loss(z, y, targets.weight)
                if W is not None:
                    label_loss = label_loss * w
            else:
                rows = label_batches[step]
                z_labelled = module.encode_sample(
                    X.index_select(0, rows), label_eps[step]
                )
                y = targets.values.index_select(0, rows)
                label_loss = module.label_loss(z_labelled, y, targets.weight)
                if W is not None:
                    label_loss = label_loss * W.index_select(0, rows)
            label_term = label_loss.mean()
            loss = loss + label_term
            per_row = per_row + label_term.detach()
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

    ``load(i)`` returns part ``i`` as NumPy arrays: its encoded rows (B, D) and
    their mask of observed entries (B, n_columns). An epoch visits the parts in a
    new random order and each part's rows in shuffled mini-batches. The next part
    is loaded in a thread while one trains, so at most two are in memory; ``load``
    must not use torch (a torch operation in a second thread starts a second
    OpenMP team: training ran at 42,000 rows/s instead of 112,000 on 2 cores).
    """

    def __init__(
        self,
        load: Callable[[int], tuple[np.ndarray, np.ndarray]],
        n_parts: int,
        n_rows: int,
        device: torch.device,
    ) -> None:
        self.load, self.n_parts, self.n_rows = load, n_parts, n_rows
        self.device = device

    def periods(
        self,
        module: VAE,
        optimizer: torch.optim.Optimizer,
        batch_size: int,
        beta: float,
        generator: torch.Generator,
        period_rows: int,
    ) -> Iterator[tuple[torch.Tensor, int]]:
        """Train one epoch; yield (summed negative ELBO, rows) every period.

        A period ends after the first part that brings it to ``period_rows`` rows.
        """
        order = torch.randperm(
            self.n_parts, generator=generator, device=generator.device
        ).tolist()
        total, rows = None, 0
        # The next part is read and encoded in a thread while this one trains:
        # reading, decoding and first-touching the memory of a part took about as
        # long as training on it (measured: 500,000 rows x 50 columns from parquet).
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self.load, order[0])
            for position in range(len(order)):
                X, M = as_tensors(*pending.result(), self.device)
                if position + 1 < len(order):
                    pending = pool.submit(self.load, order[position + 1])
                part = train_epoch(module, optimizer, X, batch_size, beta, generator, M)
                total = part if total is None else total + part
                rows += X.shape[0]
                del X, M  # at most two parts in memory
                if rows >= period_rows:
                    yield total, rows
                    total, rows = None, 0
        if rows:
            yield total, rows


def _tensor_periods(
    module: VAE,
    optimizer: torch.optim.Optimizer,
    X: torch.Tensor,
    M: torch.Tensor | None,
    batch_size: int,
    beta: float,
    generator: torch.Generator,
    period_rows: int,
    W: torch.Tensor | None = None,
    targets: Targets | None = None,
) -> Iterator[tuple[torch.Tensor, int]]:
    """Train one epoch over in-memory rows; yield (summed loss, rows) per period."""
    n_samples = X.shape[0]
    extra = {"W": W, "targets": targets}
    if n_samples <= period_rows:  # one period: the plain epoch
        yield (
            train_epoch(module, optimizer, X, batch_size, beta, generator, M, **extra),
            n_samples,
        )
        return
    order = torch.randperm(n_samples, generator=generator, device=X.device)
    # Periods of whole mini-batches, as even as the batches allow.
    n_periods = -(-n_samples // period_rows)
    n_batches = -(-n_samples // batch_size)
    bounds = [batch_size * round(i * n_batches / n_periods) for i in range(n_periods)]
    for start, stop in zip(bounds, [*bounds[1:], n_samples], strict=True):
        part = order[start:stop]
        loss = train_epoch(
            module, optimizer, X, batch_size, beta, generator, M, part, **extra
        )
        yield loss, part.shape[0]


@torch.no_grad()
def validation_loss(
    module: VAE,
    X: torch.Tensor,
    eps: torch.Tensor,
    M: torch.Tensor | None = None,
    W: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return the summed negative ELBO of ``X`` with fixed noise (a draw per row).

    Each row's term is multiplied by its weight in ``W`` (None: 1).
    """
    module.eval()
    nll, kl, _ = module.loss_terms(X, eps, M)
    per_row = nll + kl
    if W is not None:
        per_row = per_row * W
    return per_row.sum()


def train(
    module: VAE,
    X_train: torch.Tensor | Partitions,
    X_val: torch.Tensor | None,
    config: TrainConfig,
    generator: torch.Generator,
    M_train: torch.Tensor | None = None,
    M_val: torch.Tensor | None = None,
    W_train: torch.Tensor | None = None,
    W_val: torch.Tensor | None = None,
    targets: Targets | None = None,
) -> TrainResult:
    """Fit ``module`` by minimising the negative ELBO with Adam.

    Training runs in evaluation periods: an epoch, or on data larger than
    ``PERIOD_ROWS`` training rows, a part of an epoch of about that many
    rows. Without validation data, training stops once the training loss has not
    improved by ``tol`` for ``n_iter_no_change`` periods, and the final weights are
    kept. With validation data, the same rule applies to the validation loss and
    the weights of the best period are restored.

    A non-finite loss or parameter restores the last good weights and stops with a
    warning, or raises ``FloatingPointError`` when no period finished cleanly. A
    ``KeyboardInterrupt`` keeps the best weights so far and warns. ``M_train`` and
    ``M_val`` mark observed entries, ``W_train`` and ``W_val`` weigh rows, and
    ``targets`` of the training rows add the label term (see ``train_epoch``);
    ``X_train`` may be a ``Partitions`` source, which brings its own masks (and
    takes neither weights nor targets).
    """
    result = TrainResult()
    device = next(module.parameters()).device
    use_fused = device.type in ("cpu", "cuda")
    optimizer = torch.optim.Adam(
        module.parameters(), lr=config.learning_rate, fused=use_fused
    )
    n_train = X_train.n_rows if isinstance(X_train, Partitions) else X_train.shape[0]
    period_rows = PERIOD_ROWS  # read at call time: tests shrink it
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
        initial = validation_loss(module, X_val, val_eps, M_val, W_val).item()
        initial /= X_val.shape[0]
        if math.isfinite(initial):
            best_loss, best_state = initial, _snapshot(module)
            result.best_validation_loss = initial
    stalled = 0
    # No time estimate: early stopping usually ends training long before max_iter.
    progress = tqdm(
        total=config.max_iter,
        disable=not config.verbose,
        unit="epoch",
        bar_format="{desc}epoch {n:.4g}/{total_fmt} [{elapsed}{postfix}]",
        desc="VAE ",
    )
    started = time.perf_counter()
    rows_done, epoch, stop = 0, 0, False
    try:
        for epoch in range(config.max_iter):
            beta = _beta_at(config, epoch)
            if isinstance(X_train, Partitions):
                periods = X_train.periods(
                    module,
                    optimizer,
                    config.batch_size,
                    beta,
                    generator,
                    period_rows,
                )
            else:
                periods = _tensor_periods(
                    module,
                    optimizer,
                    X_train,
                    M_train,
                    config.batch_size,
                    beta,
                    generator,
                    period_rows,
                    W_train,
                    targets,
                )
            for total, rows in periods:
                finite = _all_finite(module, total)
                if X_val is not None:
                    val_total = validation_loss(module, X_val, val_eps, M_val, W_val)
                    finite = finite & torch.isfinite(val_total)
                if not bool(finite):  # the one host synchronisation of the period
                    _handle_non_finite(
                        module, epoch, best_state or last_good_state, config
                    )
                    stop = True
                    break
                train_loss = total.item() / rows
                result.loss_curve.append(train_loss)
                result.n_iter = epoch + 1  # epochs begun, the last one maybe in part
                if X_val is not None:
                    monitored = val_total.item() / X_val.shape[0]
                    result.validation_losses.append(monitored)
                else:
                    monitored = train_loss
                last_good_state = _snapshot(module)
                rows_done += rows
                if config.verbose:
                    postfix = {"loss": f"{train_loss + config.offset_train:.4g}"}
                    if X_val is not None:
                        postfix["val"] = f"{monitored + config.offset_val:.4g}"
                    rate = rows_done / (time.perf_counter() - started)
                    postfix["rows/s"] = f"{rate:.3g}"
                    progress.set_postfix(postfix, refresh=False)
                    progress.update(rows / n_train)
                # The objective changes while the KL weight ramps up: judge progress
                # only once it is final.
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
                    result.converged = stop = True
                    _report_stop(
                        config,
                        epoch,
                        n_train > period_rows,
                        X_val is not None,
                        best_loss,
                    )
                    break
            if stop:
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
    if targets is not None and module.class_prior is not None:
        # The class prior of the final encoder, for sampling and the classifier.
        fit_class_prior(module, X_train, targets.values, W_train)
    return result


def _report_stop(
    config: TrainConfig, epoch: int, split: bool, validated: bool, best_loss: float
) -> None:
    periods = "evaluation periods (parts of epochs)" if split else "epochs"
    message = (
        f"Stopped at epoch {epoch + 1}: the "
        f"{'validation' if validated else 'training'} loss has not improved by "
        f"tol={config.tol:g} for {config.n_iter_no_change} {periods}"
    )
    if validated:
        message += f"; best validation loss {best_loss + config.offset_val:.4g}."
    else:
        message += "."
    _report(config, message)


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
