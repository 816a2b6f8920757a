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
from ._validation import user_stacklevel

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
    1,429 epochs). The budget is at most ``AUTO_STEPS`` epochs (10,000), reached
    when an epoch is a single step (up to 256 training rows): the optimizer
    needs about as many steps on small data as on large, and early stopping ends
    most fits long before. The columns do not count: a long run on wide, short
    data (200 rows x 2,000 columns ran 2,058 epochs) is a validation loss still
    improving, there from a poor start (a PCA noise variance about columns /
    rows times too large), which a smaller budget would stop unfinished.
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


def snapshot(module: VAE) -> dict[str, torch.Tensor]:
    """Return a copy of the module's weights, to restore later."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def all_finite(module: VAE, loss: torch.Tensor) -> torch.Tensor:
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


def make_optimizer(module: VAE, learning_rate: float) -> torch.optim.Optimizer:
    """Adam over the module's parameters, fused where the device allows it."""
    device = next(module.parameters()).device
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(module.parameters(), lr=learning_rate, fused=fused)


@dataclass
class TrainingRows:
    """The rows a run trains on (see ``train_epoch`` for ``M``, ``W``, ``targets``).

    ``X`` is a tensor, or a ``Partitions`` source for data that arrive in parts,
    which brings its own masks and takes neither weights nor targets.
    """

    X: torch.Tensor | Partitions
    M: torch.Tensor | None = None
    W: torch.Tensor | None = None
    targets: Targets | None = None

    @property
    def n_rows(self) -> int:
        X = self.X
        return X.n_rows if isinstance(X, Partitions) else X.shape[0]

    def periods(
        self,
        module: VAE,
        optimizer: torch.optim.Optimizer,
        config: TrainConfig,
        beta: float,
        generator: torch.Generator,
        period_rows: int,
    ) -> Iterator[tuple[torch.Tensor, int]]:
        """Train one epoch; yield (summed loss, rows) after each period."""
        if isinstance(self.X, Partitions):
            return self.X.periods(
                module, optimizer, config.batch_size, beta, generator, period_rows
            )
        return _tensor_periods(
            module,
            optimizer,
            self.X,
            self.M,
            config.batch_size,
            beta,
            generator,
            period_rows,
            self.W,
            self.targets,
        )


class HeldOut:
    """Held-out rows and their fixed noise: the validation loss of early stopping.

    The noise is drawn once, at the start, so that the loss of two periods
    differs only by the weights.
    """

    def __init__(
        self,
        X: torch.Tensor,
        generator: torch.Generator,
        n_components: int,
        M: torch.Tensor | None = None,
        W: torch.Tensor | None = None,
    ) -> None:
        self.X, self.M, self.W = X, M, W
        self.eps = torch.randn(
            (X.shape[0], n_components), generator=generator, device=X.device
        )

    def loss(self, module: VAE) -> torch.Tensor:
        """Return the summed negative ELBO of the held-out rows (0-d, no sync)."""
        return validation_loss(module, self.X, self.eps, self.M, self.W)


class EarlyStopping:
    """Stop when the monitored loss has not improved by ``tol`` for a while.

    Counts the evaluation periods in a row without an improvement of at least
    ``tol`` on the best loss so far; ``patience`` of them stop training. With
    ``restore_best``, it keeps a copy of the best weights, the starting point
    included (see ``start``), for ``train`` to restore.
    """

    def __init__(self, patience: int, tol: float, restore_best: bool) -> None:
        self.patience, self.tol, self.restore_best = patience, tol, restore_best
        self.best_loss = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.kept_loss: float | None = None  # loss of the weights in best_state
        self.stalled = 0

    def start(self, loss: float, module: VAE) -> None:
        """Count the starting point as a candidate, when its loss is finite."""
        if math.isfinite(loss):
            self.best_loss, self.kept_loss = loss, loss
            self.best_state = snapshot(module)

    def __call__(self, loss: float, module: VAE) -> bool:
        """Record one period's loss; return whether to stop."""
        if loss < self.best_loss - self.tol:
            self.stalled = 0
            if self.restore_best:
                self.best_state, self.kept_loss = snapshot(module), loss
        else:
            self.stalled += 1
        self.best_loss = min(self.best_loss, loss)
        return self.stalled >= self.patience


class Progress:
    """What a run reports: the progress bar, the log, and the period hooks.

    ``hooks`` (optional, see ``TrainingHooks``) hear of every epoch; they may
    ask to stop.
    """

    def __init__(
        self, config: TrainConfig, n_train: int, hooks: TrainingHooks | None = None
    ) -> None:
        self.config, self.n_train, self.hooks = config, n_train, hooks
        # No time estimate: early stopping usually ends training long before
        # max_iter.
        self.bar = tqdm(
            total=config.max_iter,
            disable=not config.verbose,
            unit="epoch",
            bar_format="{desc}epoch {n:.4g}/{total_fmt} [{elapsed}{postfix}]",
            desc="VAE ",
        )
        self.started = time.perf_counter()
        self.rows_done = 0
        self.open_epoch: int | None = None
        self.last_losses: tuple[float, float | None] = (math.nan, None)
        if hooks is not None:
            hooks.on_train_begin(config.max_iter)

    def period(self, rows: int, train_loss: float, val_loss: float | None) -> None:
        """Report one finished period: the bar, and the losses for the hooks."""
        self.rows_done += rows
        config = self.config
        if config.verbose:
            postfix = {"loss": f"{train_loss + config.offset_train:.4g}"}
            if val_loss is not None:
                postfix["val"] = f"{val_loss + config.offset_val:.4g}"
            rate = self.rows_done / (time.perf_counter() - self.started)
            postfix["rows/s"] = f"{rate:.3g}"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(rows / self.n_train)
        self.last_losses = (
            train_loss + config.offset_train,
            None if val_loss is None else val_loss + config.offset_val,
        )

    def epoch_begin(self, epoch: int) -> None:
        """Tell the hooks that an epoch starts."""
        if self.hooks is not None:
            self.hooks.on_epoch_begin(epoch)
            self.open_epoch = epoch

    def epoch_end(self, module: VAE) -> bool:
        """End the open epoch; return whether a hook asks to stop."""
        if self.hooks is None or self.open_epoch is None:
            return False
        epoch, self.open_epoch = self.open_epoch, None
        return bool(self.hooks.on_epoch_end(module, epoch, *self.last_losses))

    def report(self, message: str) -> None:
        """Log why training stopped, and print it under the progress bar if verbose.

        The bar is closed first (training ends with the report), so that its
        last line comes before the message and once, in a terminal or not.
        """
        logger.info(message)
        if self.config.verbose:
            self.bar.close()
            tqdm.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


class TrainingHooks:
    """What ``train`` tells an observer (scikit-learn's callbacks, see ``_callbacks``).

    ``on_train_begin`` gets the epoch budget; ``on_epoch_end`` gets the module
    (in training precision and mode), the 0-based epoch, and the last period's
    training and validation losses in the data's units (the latter None without
    held-out rows). A true return value of ``on_epoch_end`` stops training, as
    early stopping does.
    """

    def on_train_begin(self, max_iter: int) -> None:
        """Training starts, with at most ``max_iter`` epochs."""

    def on_epoch_begin(self, epoch: int) -> None:
        """Epoch ``epoch`` (0-based) starts."""

    def on_epoch_end(
        self, module: VAE, epoch: int, train_loss: float, val_loss: float | None
    ) -> bool:
        """Epoch ``epoch`` ends (in part when training stops within it)."""
        return False


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
    rows: TrainingRows,
    held_out: HeldOut | None,
    config: TrainConfig,
    generator: torch.Generator,
    hooks: TrainingHooks | None = None,
) -> TrainResult:
    """Fit ``module`` by minimising the negative ELBO with Adam.

    Training runs in evaluation periods: an epoch, or on data larger than
    ``PERIOD_ROWS`` training rows, a part of an epoch of about that many
    rows. Without held-out rows, training stops once the training loss has not
    improved by ``tol`` for ``n_iter_no_change`` periods, and the final weights
    are kept. With them, the same rule applies to the validation loss and the
    weights of the best period, the start included, are restored.

    A non-finite loss or parameter restores the last good weights and stops with
    a warning, or raises ``FloatingPointError`` when no period finished cleanly.
    A ``KeyboardInterrupt`` keeps the best weights so far and warns. A class
    prior (``rows.targets``) is refitted to the final encoder.
    """
    result = TrainResult()
    optimizer = make_optimizer(module, config.learning_rate)
    period_rows = PERIOD_ROWS  # read at call time: tests shrink it
    stopping = EarlyStopping(
        config.n_iter_no_change, config.tol, restore_best=held_out is not None
    )
    if held_out is not None:
        # The starting point (PCA's solution, when the model starts there) is a
        # candidate too: early stopping never returns a worse validation loss.
        stopping.start(held_out.loss(module).item() / held_out.X.shape[0], module)
        result.best_validation_loss = stopping.kept_loss
    progress = Progress(config, rows.n_rows, hooks)
    last_good_state, epoch = None, 0
    try:
        for epoch in range(config.max_iter):
            progress.epoch_begin(epoch)
            beta = _beta_at(config, epoch)
            periods = rows.periods(
                module, optimizer, config, beta, generator, period_rows
            )
            for total, n_rows in periods:
                losses = _period_losses(module, total, n_rows, held_out)
                if losses is None:  # the one host synchronisation of the period
                    _handle_non_finite(
                        module, epoch, stopping.best_state or last_good_state, config
                    )
                    progress.epoch_end(module)
                    return _finish(module, result, rows, stopping, last_good_state)
                train_loss, val_loss = losses
                result.loss_curve.append(train_loss)
                result.n_iter = epoch + 1  # epochs begun, the last one maybe in part
                if val_loss is not None:
                    result.validation_losses.append(val_loss)
                last_good_state = snapshot(module)
                progress.period(n_rows, train_loss, val_loss)
                # The objective changes while the KL weight ramps up: judge
                # progress only once it is final.
                if epoch + 1 < config.kl_warmup:
                    continue
                stop = stopping(train_loss if val_loss is None else val_loss, module)
                if held_out is not None:
                    result.best_validation_loss = stopping.kept_loss
                if stop:
                    result.converged = True
                    progress.epoch_end(module)
                    progress.report(
                        _stop_message(
                            config,
                            epoch,
                            rows.n_rows > period_rows,
                            held_out is not None,
                            stopping.best_loss,
                        )
                    )
                    return _finish(module, result, rows, stopping, last_good_state)
            if progress.epoch_end(module):
                result.converged = True
                progress.report(
                    f"Stopped at epoch {epoch + 1}: a callback asked to stop."
                )
                return _finish(module, result, rows, stopping, last_good_state)
        if config.max_iter:
            progress.report(f"Stopped at max_iter={config.max_iter} epochs.")
    except KeyboardInterrupt:
        if last_good_state is None:  # nothing finished: nothing to keep
            raise
        result.interrupted = True
        warnings.warn(
            f"Training interrupted in epoch {epoch + 1}; keeping the "
            + (
                "best weights so far."
                if stopping.best_state
                else "weights of the last epoch."
            )
            + " The estimator is fitted.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    finally:
        progress.close()
    return _finish(module, result, rows, stopping, last_good_state)


def _period_losses(
    module: VAE, total: torch.Tensor, n_rows: int, held_out: HeldOut | None
) -> tuple[float, float | None] | None:
    """Per-row training and validation losses of a period; None if not finite."""
    finite = all_finite(module, total)
    if held_out is not None:
        val_total = held_out.loss(module)
        finite = finite & torch.isfinite(val_total)
    if not bool(finite):
        return None
    val_loss = None
    if held_out is not None:
        val_loss = val_total.item() / held_out.X.shape[0]
    return total.item() / n_rows, val_loss


def _finish(
    module: VAE,
    result: TrainResult,
    rows: TrainingRows,
    stopping: EarlyStopping,
    last_good_state: dict | None,
) -> TrainResult:
    """Restore the weights to keep, and fit the class prior to the final encoder."""
    best_state = stopping.best_state
    if result.interrupted:
        best_state = best_state or last_good_state
    if best_state is not None and (stopping.restore_best or result.interrupted):
        module.load_state_dict(best_state)
    targets = rows.targets
    if targets is not None and module.class_prior is not None:
        # The class prior of the final encoder, for sampling and the classifier.
        fit_class_prior(module, rows.X, targets.values, rows.W)
    return result


def _stop_message(
    config: TrainConfig, epoch: int, split: bool, validated: bool, best_loss: float
) -> str:
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
    return message


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
        stacklevel=user_stacklevel(),
    )
