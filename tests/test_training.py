"""The training loop (``skvae._training``): stopping, recovery, progress."""

import re
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skvae import VAETransformer, _training

from .helpers import FAST


def test_early_stopping_records_validation_and_restores_best(blobs, monkeypatch):
    snapshots = []
    original = _training.validation_loss

    def spy(module, X, eps, *args):
        loss = original(module, X, eps, *args)
        snapshots.append((loss.item(), _training.snapshot(module)))
        return loss

    monkeypatch.setattr(_training, "validation_loss", spy)
    vae = VAETransformer(
        2,
        max_iter=300,
        n_iter_no_change=5,
        tol=0.0,
        early_stopping=True,
        hidden_layer_sizes=(32,),
        batch_size=32,
        learning_rate=1e-2,
        random_state=0,
    ).fit(blobs)
    assert len(vae.validation_scores_) == vae.n_iter_ < 300  # stopped early
    # snapshots[0] is the starting point (PCA), then one per epoch.
    assert len(snapshots) == vae.n_iter_ + 1
    best = int(np.argmin([loss for loss, _ in snapshots]))
    assert 0 < best < vae.n_iter_  # training beat the start; the last was not best
    assert best - 1 == int(np.argmax(vae.validation_scores_))
    assert vae.best_validation_score_ == max(vae.validation_scores_)
    for name, value in vae.module_.state_dict().items():
        assert_allclose(value.numpy(), snapshots[best][1][name].double().numpy())


def test_early_stopping_keeps_the_pca_start_when_training_only_hurts(blobs):
    # A learning rate this large only makes things worse: the PCA start is kept.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        vae = VAETransformer(2, max_iter=5, learning_rate=10.0, random_state=0)
        vae.fit(blobs)
    assert vae.best_validation_score_ > max(vae.validation_scores_, default=-np.inf)
    # The kept weights are PPCA's posterior mean: PCA scores of the training rows
    # (the 90% outside the validation split) shrunk by sqrt(l - s2) / l. The split
    # is drawn over the rows in their canonical order (sorted by value).
    X_std = (blobs - blobs.mean(0)) / blobs.std(0)
    canonical = X_std[np.lexsort(blobs.T[::-1])]
    order = torch.randperm(200, generator=torch.Generator().manual_seed(0))
    pca = PCA(2).fit(canonical[order[20:].numpy()])
    expected = pca.transform(X_std) + pca.mean_ @ pca.components_.T
    expected -= pca.mean_ @ pca.components_.T
    expected *= np.sqrt(pca.explained_variance_ - pca.noise_variance_)
    expected /= pca.explained_variance_
    assert_allclose(np.abs(vae.transform(blobs)), np.abs(expected), atol=1e-4)


def test_convergence_warning_when_max_iter_is_reached(blobs):
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        VAETransformer(2, max_iter=3, random_state=0).fit(blobs)


@pytest.mark.parametrize("early_stopping", [True, False])
def test_stops_when_the_monitored_loss_stalls(blobs, early_stopping):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        vae = VAETransformer(
            2,
            max_iter=500,
            tol=10.0,
            n_iter_no_change=3,
            early_stopping=early_stopping,
            random_state=0,
        ).fit(blobs)
    assert vae.n_iter_ < 500


@pytest.mark.parametrize("early_stopping, n_iter", [(False, 17), (True, 16)])
def test_kl_warmup_delays_stopping(blobs, early_stopping, n_iter):
    # Nothing improves by tol=1e6, so training stops after n_iter_no_change=2
    # stalled epochs, counted from the end of the 15-epoch warm-up. Without early
    # stopping the first full-weight epoch sets the best loss; with it, the start
    # already did.
    vae = VAETransformer(
        2,
        max_iter=500,
        tol=1e6,
        n_iter_no_change=2,
        kl_warmup=15,
        early_stopping=early_stopping,
        hidden_layer_sizes=(16,),
        random_state=0,
    ).fit(blobs)
    assert vae.n_iter_ == n_iter


def _breaking_epoch(fail_at, exc=None):
    """A train_epoch that raises ``exc`` or makes the model NaN in epoch ``fail_at``."""
    original = _training.train_epoch
    calls = {"n": 0}

    def train_epoch(module, optimizer, X, *args, **kwargs):
        calls["n"] += 1
        total = original(module, optimizer, X, *args, **kwargs)
        if calls["n"] == fail_at:
            if exc is not None:
                raise exc
            with torch.no_grad():
                next(module.parameters()).fill_(float("nan"))
            return total * float("nan")
        return total

    return train_epoch


def test_non_finite_loss_restores_last_good_weights(blobs, monkeypatch):
    monkeypatch.setattr(_training, "train_epoch", _breaking_epoch(4))
    vae = VAETransformer(2, **FAST)
    with pytest.warns(RuntimeWarning, match=r"non-finite.*epoch 4.*learning_rate"):
        vae.fit(blobs)
    assert vae.n_iter_ == 3
    assert np.all(np.isfinite(vae.transform(blobs)))
    assert np.all(np.isfinite(vae.score_samples(blobs)))


def test_non_finite_loss_in_first_epoch_raises(blobs, monkeypatch):
    monkeypatch.setattr(_training, "train_epoch", _breaking_epoch(1))
    vae = VAETransformer(2, **FAST, early_stopping=False)
    with pytest.raises(FloatingPointError, match=r"epoch 1.*learning_rate"):
        vae.fit(blobs)
    with pytest.raises(NotFittedError):  # no half-fitted model is left behind
        vae.transform(blobs)


def test_non_finite_loss_in_first_epoch_falls_back_to_the_start(blobs, monkeypatch):
    # With early stopping, the validated starting point is a good state to keep.
    monkeypatch.setattr(_training, "train_epoch", _breaking_epoch(1))
    vae = VAETransformer(2, **FAST)
    with pytest.warns(RuntimeWarning, match="epoch 1"):
        vae.fit(blobs)
    assert vae.n_iter_ == 0
    assert np.all(np.isfinite(vae.transform(blobs)))


def test_huge_learning_rate_never_gives_nan_features(blobs):
    # With early stopping the validated start is always a state to fall back to,
    # so the fit never raises: it keeps finite weights, whatever the CPU.
    vae = VAETransformer(2, max_iter=20, learning_rate=1e6, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        vae.fit(blobs)
    assert np.all(np.isfinite(vae.transform(blobs)))
    assert np.all(np.isfinite(vae.score_samples(blobs)))


def test_keyboard_interrupt_keeps_weights_and_warns(blobs, monkeypatch):
    monkeypatch.setattr(
        _training, "train_epoch", _breaking_epoch(4, exc=KeyboardInterrupt())
    )
    vae = VAETransformer(2, **FAST)
    with pytest.warns(UserWarning, match="interrupted in epoch 4"):
        vae.fit(blobs)
    assert vae.n_iter_ == 3
    assert np.all(np.isfinite(vae.transform(blobs)))


def test_keyboard_interrupt_in_first_epoch_propagates(blobs, monkeypatch):
    monkeypatch.setattr(
        _training, "train_epoch", _breaking_epoch(1, exc=KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        VAETransformer(2, **FAST).fit(blobs)


def test_verbose_shows_progress_and_logs_the_stop(blobs, capsys, caplog):
    with caplog.at_level("INFO", logger="skvae"):
        vae = VAETransformer(
            2, max_iter=50, tol=10.0, n_iter_no_change=2, verbose=1, random_state=0
        ).fit(blobs)
    shown = capsys.readouterr().err
    assert "epoch" in shown and "rows/s" in shown
    # Losses in the units of the data, as loss_curve_ and validation_scores_ are.
    assert f"loss={vae.loss_curve_[-1]:.4g}" in shown
    assert f"val={-vae.validation_scores_[-1]:.4g}" in shown
    # The stop reason reaches the screen without any logging set-up, and the log.
    assert "Stopped at epoch" in shown
    assert any("Stopped at epoch" in r.message for r in caplog.records)


def test_quiet_by_default(blobs, capsys):
    VAETransformer(2, **FAST).fit(blobs)
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""


def test_large_data_is_checked_every_period_within_an_epoch(blobs, monkeypatch):
    """Above PERIOD_ROWS training rows, early stopping judges parts of epochs."""
    monkeypatch.setattr(_training, "PERIOD_ROWS", 100)
    params = dict(n_components=2, hidden_layer_sizes=(32,), batch_size=16)
    vae = VAETransformer(max_iter=3, random_state=0, **params).fit(blobs)
    # 180 training rows: 2 periods an epoch (12 batches split 6/6), 3 epochs.
    assert vae.n_iter_ == 3
    assert len(vae.loss_curve_) == len(vae.validation_scores_) == 6
    again = VAETransformer(max_iter=3, random_state=0, **params).fit(blobs)
    assert_allclose(again.transform(blobs), vae.transform(blobs))
    # Patience counts periods: with n_iter_no_change=1 the fit may stop mid-epoch.
    quick = VAETransformer(
        max_iter=50, n_iter_no_change=1, tol=1e3, random_state=0, **params
    ).fit(blobs)
    assert len(quick.loss_curve_) == 1 and quick.n_iter_ == 1


@pytest.mark.parametrize(
    "n_rows, expected",
    [
        (10, 10),
        (1_000, 256),
        (20_000, 256),
        (100_000, 512),
        (10**6, 2048),
        (10**7, 4096),
    ],
)
def test_auto_batch_size_grows_with_the_data(n_rows, expected):
    assert _training.auto_batch_size(n_rows) == expected


def test_auto_max_iter_gives_small_data_enough_steps():
    # 1,600 rows at batch 256: 7 steps an epoch, so 10,000 steps take 1,429 epochs.
    assert _training.auto_max_iter(1_600, 256) == 1_429
    assert _training.auto_max_iter(100_000, 512) == 200
    assert _training.auto_max_iter(10**7, 4096) == 200


# --- the loop on its own, over tensors --------------------------------------------


def _module_and_data(seed=0, n_rows=120):
    from skvae._model import VAE, init_weights

    generator = torch.Generator().manual_seed(seed)
    module = VAE(4, 2, (8,), "gaussian")
    init_weights(module, generator)
    X = torch.randn((n_rows, 4), generator=torch.Generator().manual_seed(1))
    return module, X, generator


def _config(**overrides):
    settings = dict(
        max_iter=30,
        batch_size=32,
        learning_rate=1e-2,
        beta=1.0,
        kl_warmup=0,
        n_iter_no_change=3,
        tol=0.0,
    )
    return _training.TrainConfig(**{**settings, **overrides})


def test_early_stopping_counts_periods_without_improvement():
    module, _, _ = _module_and_data()
    stopping = _training.EarlyStopping(patience=2, tol=0.5, restore_best=True)
    stopping.start(10.0, module)
    assert stopping.kept_loss == 10.0 and stopping.best_state is not None
    assert not stopping(9.8, module)  # better, but by less than tol: stalled 1
    assert stopping.kept_loss == 10.0 and stopping.stalled == 1
    assert not stopping(9.0, module)  # beats the best (9.8) by more than tol
    assert stopping.kept_loss == 9.0 and stopping.stalled == 0
    assert not stopping(8.8, module)
    assert stopping(8.7, module)  # two periods without beating 9.0 by 0.5: stop
    assert stopping.best_loss == 8.7 and stopping.kept_loss == 9.0


def test_a_non_finite_start_is_no_candidate():
    module, _, _ = _module_and_data()
    stopping = _training.EarlyStopping(patience=1, tol=0.0, restore_best=True)
    stopping.start(float("nan"), module)
    assert stopping.best_state is None and stopping.kept_loss is None


def test_train_runs_on_tensors_and_records_each_epoch():
    module, X, generator = _module_and_data()
    rows = _training.TrainingRows(X)
    result = _training.train(module, rows, None, _config(max_iter=5), generator)
    assert result.n_iter == len(result.loss_curve) == 5
    assert result.loss_curve[-1] < result.loss_curve[0]
    assert not result.converged and not result.interrupted


def test_held_out_rows_restore_the_best_weights():
    module, X, generator = _module_and_data()
    held_out = _training.HeldOut(X[:20], generator, n_components=2)
    config = _config(max_iter=40, learning_rate=5e-2)
    result = _training.train(
        module, _training.TrainingRows(X[20:]), held_out, config, generator
    )
    # The weights kept are the best of the start and every epoch (tol=0).
    assert result.best_validation_loss <= min(result.validation_losses)
    kept = held_out.loss(module).item() / 20
    assert kept == pytest.approx(result.best_validation_loss, rel=1e-5)


class _Recorder(_training.TrainingHooks):
    def __init__(self, stop_at=None):
        self.events, self.stop_at = [], stop_at

    def on_train_begin(self, max_iter):
        self.events.append(("begin", max_iter))

    def on_epoch_begin(self, epoch):
        self.events.append(("epoch", epoch))

    def on_epoch_end(self, module, epoch, train_loss, val_loss):
        self.events.append(("end", epoch, train_loss, val_loss))
        return epoch == self.stop_at


def test_hooks_hear_every_epoch_and_can_stop_training():
    module, X, generator = _module_and_data()
    hooks = _Recorder(stop_at=2)
    config = _config(max_iter=10, offset_train=100.0)
    result = _training.train(
        module, _training.TrainingRows(X), None, config, generator, hooks
    )
    assert result.n_iter == 3 and result.converged  # a requested stop: no warning
    assert hooks.events[0] == ("begin", 10)
    ends = [e for e in hooks.events if e[0] == "end"]
    assert [e[1] for e in ends] == [0, 1, 2]
    # Losses reach the hooks in the data's units (the offset added).
    assert ends[-1][2] == pytest.approx(result.loss_curve[-1] + 100.0)
    assert ends[-1][3] is None


def test_an_epoch_ended_by_early_stopping_is_reported_to_the_hooks():
    module, X, generator = _module_and_data()
    hooks = _Recorder()
    config = _config(max_iter=50, n_iter_no_change=1, tol=1e6)
    result = _training.train(
        module, _training.TrainingRows(X), None, config, generator, hooks
    )
    # The first epoch improves on nothing; the second fails to beat it by tol.
    assert result.n_iter == 2 and result.converged
    assert [e[:2] for e in hooks.events] == [
        ("begin", 50),
        ("epoch", 0),
        ("end", 0),
        ("epoch", 1),
        ("end", 1),
    ]


def test_thread_count_changes_a_fit_only_within_float32_rounding(blobs):
    # Same process: bitwise equal for the same thread count (see
    # test_same_seed_same_fit_other_seed_other_fit); across thread counts, float32
    # products round differently with the split, so equal to a tolerance.
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = VAETransformer(2, **FAST).fit(blobs).transform(blobs)
        torch.set_num_threads(2)
        two = VAETransformer(2, **FAST).fit(blobs).transform(blobs)
    finally:
        torch.set_num_threads(saved)
    assert_allclose(one, two, rtol=1e-5, atol=1e-6)


def test_the_auto_budget_of_small_data_is_at_most_auto_steps_epochs():
    # A default fit on 200 rows x 2,000 columns ran 2,058 epochs: its budget, for
    # 180 training rows (one step an epoch), is the documented maximum of
    # AUTO_STEPS = 10,000 epochs; no size gets more.
    from skvae._setup import budget

    assert budget(VAETransformer(), 180) == (180, _training.AUTO_STEPS)
    for n_train in [1, 2, 90, 180, 256, 257, 270, 1_212, 54_000, 10**7]:
        batch_size = _training.auto_batch_size(n_train)
        assert _training.auto_max_iter(n_train, batch_size) <= _training.AUTO_STEPS
    # The budgets of the benchmarks' sizes (training rows) are those it had.
    assert _training.auto_max_iter(270, 256) == 5_000  # 300 rows
    assert _training.auto_max_iter(1_212, 256) == 2_000  # digits
    assert _training.auto_max_iter(54_000, 512) == 200  # MNIST


def test_wide_short_data_start_at_the_ppca_likelihood():
    # Standard normal noise: the best model is N(0, I), -0.5 log(2 pi e) a value.
    X = np.random.default_rng(0).normal(size=(60, 600))
    vae = VAETransformer(2, max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)
    bound = -0.5 * np.log(2 * np.pi * np.e) * X.shape[1]
    assert vae.best_validation_score_ > 1.02 * bound  # -1284 with the bug, -852 fixed


@pytest.mark.parametrize(
    "validation, best, says",
    [
        ([5.0, 4.0, 3.0, 2.0], None, r"still improving .* \(last at epoch 4\)"),
        ([5.0, 2.0, 2.5, 3.0, 2.8], None, "before early stopping .* at epoch 2"),
        ([50.0, 4e4, 9e6, 70.0], 3.0, "no epoch improved .* learning rate"),
    ],
    ids=["improving", "stalled", "never-better-than-the-start"],
)
def test_the_max_iter_warning_says_what_the_losses_show(validation, best, says):
    # Reaching max_iter is not always "still improving": a fit may have stalled
    # (early stopping was about to end it) or never beaten its start (a loss
    # that blew up, where more epochs are the wrong advice).
    from skvae._setup import _max_iter_message
    from skvae._training import TrainConfig, TrainResult

    n = len(validation)
    config = TrainConfig(
        max_iter=n,
        batch_size=32,
        learning_rate=1e-3,
        beta=1.0,
        kl_warmup=0,
        n_iter_no_change=10,
        tol=1e-4,
        verbose=False,
        offset_train=0.0,
        offset_val=0.0,
    )
    result = TrainResult(
        loss_curve=list(validation),
        validation_losses=list(validation),
        best_validation_loss=min(validation) if best is None else best,
        n_iter=n,
    )
    message = _max_iter_message(result, config, validated=True)
    assert message.startswith(f"VAETransformer stopped at max_iter={n} epochs")
    assert re.search(says, message)


def test_a_verbose_fit_prints_its_last_bar_line_once_before_the_stop(blobs, capfd):
    VAETransformer(2, max_iter=3, verbose=True, random_state=0).fit(blobs)
    err = capfd.readouterr().err
    lines = [line.split("\r")[-1] for line in err.splitlines() if line.strip()]
    assert lines[-1] == "Stopped at max_iter=3 epochs."
    assert lines[-2].startswith("VAE epoch 3/3")
    assert sum(line.startswith("VAE epoch 3/3") for line in lines) == 1
