"""Behaviour of VAETransformer that users rely on."""

import pickle
import random
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import skvae
from skvae import VAETransformer, _training

FAST = dict(max_iter=10, hidden_layer_sizes=(32,), random_state=0)


@pytest.fixture
def fitted(blobs):
    return VAETransformer(3, **FAST).fit(blobs)


def test_version():
    assert isinstance(skvae.__version__, str)


def test_fit_sets_documented_attributes(blobs):
    vae = VAETransformer(2, **FAST)
    assert vae.fit(blobs) is vae
    assert vae.n_features_in_ == 6
    assert vae.n_iter_ == len(vae.loss_curve_) == len(vae.validation_scores_) == 10
    assert all(np.isfinite(vae.loss_curve_))
    assert np.isfinite(vae.best_validation_score_)
    no_es = VAETransformer(2, **FAST, early_stopping=False).fit(blobs)
    assert no_es.validation_scores_ is None and no_es.best_validation_score_ is None
    assert vae.kl_per_component_.shape == (2,)
    assert np.all(vae.kl_per_component_ >= 0)
    assert isinstance(vae.module_, torch.nn.Module)
    assert vae.device_ == torch.device("cpu")
    assert_allclose(vae.mean_, blobs.mean(axis=0))
    assert_allclose(vae.scale_, blobs.std(axis=0))
    assert not hasattr(vae, "feature_names_in_")


def test_training_loss_decreases_and_matches_score_units(blobs):
    vae = VAETransformer(2, max_iter=60, random_state=0).fit(blobs)
    assert vae.loss_curve_[-1] < vae.loss_curve_[0]
    # loss_curve_ is the negative training ELBO in the user's units, like -score.
    assert abs(vae.loss_curve_[-1] + vae.score(blobs)) < 1.0


def test_dataframe_feature_names_and_pandas_output(blobs):
    df = pd.DataFrame(blobs, columns=[f"c{i}" for i in range(6)])
    vae = VAETransformer(2, **FAST).set_output(transform="pandas").fit(df)
    assert_array_equal(vae.feature_names_in_, df.columns)
    Z = vae.transform(df)
    assert isinstance(Z, pd.DataFrame)
    assert list(Z.columns) == ["vaetransformer0", "vaetransformer1"]
    assert_array_equal(vae.get_feature_names_out(), Z.columns)
    renamed = df.rename(columns={"c0": "other"})
    with pytest.raises(ValueError, match="feature names"):
        vae.transform(renamed)


def test_transform_is_deterministic_and_batch_invariant(fitted, blobs):
    Z = fitted.transform(blobs)
    assert Z.shape == (200, 3)
    assert_array_equal(Z, fitted.transform(blobs))
    in_pieces = np.vstack(
        [fitted.transform(blobs[i : i + 7]) for i in range(0, 200, 7)]
    )
    assert_allclose(in_pieces, Z, rtol=0, atol=1e-12)
    shuffled = np.random.RandomState(0).permutation(200)
    assert_allclose(fitted.transform(blobs[shuffled]), Z[shuffled], rtol=0, atol=1e-12)


def test_transform_in_chunks_equals_whole(fitted, blobs, monkeypatch):
    whole = fitted.transform(blobs)
    monkeypatch.setattr("skvae._transformer._CHUNK_ELEMENTS", 60)  # 10-row chunks
    assert_allclose(fitted.transform(blobs), whole, rtol=0, atol=1e-12)
    assert_allclose(
        fitted.score_samples(blobs),
        VAETransformer(3, **FAST).fit(blobs).score_samples(blobs),
        rtol=0,
        atol=1e-9,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_dtype_is_preserved(blobs, dtype):
    X = blobs.astype(dtype)
    vae = VAETransformer(2, **FAST).fit(X)
    assert vae.transform(X).dtype == dtype
    assert vae.inverse_transform(vae.transform(X)).dtype == dtype


def test_inverse_transform_returns_original_units(blobs):
    X = 1000.0 + 50.0 * blobs
    vae = VAETransformer(3, batch_size=32, random_state=0).fit(X)
    X_rec = vae.inverse_transform(vae.transform(X))
    assert X_rec.shape == X.shape
    # Reconstructions are in the original units: far closer to the rows than the
    # column means are (measured: 7.5% of the variance).
    rec_error = np.mean((X_rec - X) ** 2)
    assert rec_error < 0.15 * np.mean((X - X.mean(axis=0)) ** 2)


def test_inverse_transform_rejects_wrong_width(fitted):
    with pytest.raises(ValueError, match="n_components=3"):
        fitted.inverse_transform(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"2D array"):
        fitted.inverse_transform(np.zeros(3))


def test_sample_shape_units_and_reproducibility(blobs):
    X = 1000.0 + 50.0 * blobs
    vae = VAETransformer(3, max_iter=100, random_state=0).fit(X)
    new = vae.sample(500, random_state=1)
    assert new.shape == (500, 6)
    assert_allclose(new.mean(axis=0), X.mean(axis=0), atol=0.3 * X.std(axis=0).max())
    assert_array_equal(new, vae.sample(500, random_state=1))
    assert not np.array_equal(vae.sample(5), vae.sample(5))


def test_sample_without_noise_is_the_decoded_prior_draw(fitted):
    mean = fitted.sample(4, random_state=3, noise=False)
    noisy = fitted.sample(4, random_state=3, noise=True)
    z = torch.randn(
        (4, 3), generator=torch.Generator().manual_seed(3), dtype=torch.float64
    ).numpy()
    assert_allclose(mean, fitted.inverse_transform(z))
    assert not np.allclose(mean, noisy)


@pytest.mark.parametrize("n_samples", [0, -1, 2.5, True])
def test_sample_rejects_bad_n_samples(fitted, n_samples):
    with pytest.raises((ValueError, TypeError), match="n_samples"):
        fitted.sample(n_samples)


def test_score_samples_is_deterministic_and_row_independent(fitted, blobs):
    scores = fitted.score_samples(blobs)
    assert scores.shape == (200,)
    assert np.all(np.isfinite(scores))
    assert_array_equal(scores, fitted.score_samples(blobs))
    assert_allclose(fitted.score_samples(blobs[:10]), scores[:10], rtol=0, atol=1e-9)
    assert fitted.score(blobs) == pytest.approx(scores.mean())


def test_score_is_in_the_units_of_the_data(blobs):
    # Same seed, data scaled by 10: standardised inputs are identical, so the
    # density changes by the Jacobian alone: -n_features * log(10) per row.
    small = VAETransformer(2, **FAST).fit(blobs)
    large = VAETransformer(2, **FAST).fit(10 * blobs)
    assert_allclose(
        large.score_samples(10 * blobs),
        small.score_samples(blobs) - 6 * np.log(10),
        atol=1e-6,
    )


def test_linear_vae_elbo_matches_probabilistic_pca(blobs):
    # A linear Gaussian VAE is probabilistic PCA (Tipping & Bishop 1999) with a
    # per-feature noise variance, so its ELBO, in the same units, lands close to
    # PCA's exact log-likelihood (measured: -3.96 against -3.08 nats). A wrong
    # Jacobian of the standardisation would be off by several nats.
    vae = VAETransformer(
        3, hidden_layer_sizes=(), batch_size=32, learning_rate=1e-2, random_state=0
    ).fit(blobs)
    pca_ll = PCA(3).fit(blobs).score(blobs)
    assert vae.score(blobs) == pytest.approx(pca_ll, abs=1.5)


def test_label_free_grid_search_picks_a_sufficient_latent_size(blobs):
    search = GridSearchCV(
        VAETransformer(
            hidden_layer_sizes=(), max_iter=150, learning_rate=1e-2, random_state=0
        ),
        {"n_components": [1, 3]},
        cv=3,
    ).fit(blobs)
    assert search.best_params_ == {"n_components": 3}


def test_pipeline_grid_search_in_parallel_on_digits():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X[:600], y[:600], test_size=0.25, stratify=y[:600], random_state=0
    )
    pipe = Pipeline(
        [
            ("vae", VAETransformer(max_iter=15, random_state=0)),
            ("clf", LogisticRegression(max_iter=2000)),
        ]
    )
    search = GridSearchCV(pipe, {"vae__n_components": [2, 8]}, cv=2, n_jobs=2)
    search.fit(X_train, y_train)
    assert search.best_params_["vae__n_components"] in (2, 8)
    assert search.score(X_test, y_test) > 0.5  # chance is 0.1


def test_same_seed_same_fit_other_seed_other_fit(blobs):
    a = VAETransformer(2, **FAST).fit(blobs)
    b = VAETransformer(2, **FAST).fit(blobs)
    c = VAETransformer(2, **{**FAST, "random_state": 1}).fit(blobs)
    assert_array_equal(a.transform(blobs), b.transform(blobs))
    assert a.loss_curve_ == b.loss_curve_
    assert not np.allclose(a.transform(blobs), c.transform(blobs))


def test_seeded_fit_is_identical_across_processes(blobs):
    code = (
        "import numpy as np, sys; from skvae import VAETransformer; "
        "X = np.load(sys.argv[1]); "
        "v = VAETransformer(2, max_iter=10, hidden_layer_sizes=(32,), random_state=0)"
        ".fit(X); np.save(sys.argv[2], v.transform(X))"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/X.npy", blobs)
        subprocess.run(
            [sys.executable, "-c", code, f"{tmp}/X.npy", f"{tmp}/Z.npy"], check=True
        )
        other = np.load(f"{tmp}/Z.npy")
    assert_array_equal(VAETransformer(2, **FAST).fit(blobs).transform(blobs), other)


def test_random_state_instance_is_accepted(blobs):
    rng = np.random.RandomState(0)
    vae = VAETransformer(2, **{**FAST, "random_state": rng}).fit(blobs)
    assert np.all(np.isfinite(vae.transform(blobs)))


@pytest.mark.parametrize("random_state", [None, 0])
def test_global_random_states_are_untouched(blobs, random_state):
    np_state, torch_state = np.random.get_state(), torch.random.get_rng_state()
    py_state = random.getstate()
    vae = VAETransformer(
        2, **{**FAST, "early_stopping": True, "random_state": random_state}
    )
    vae.fit(blobs)
    vae.transform(blobs)
    vae.score_samples(blobs)
    vae.sample(3)
    vae.sample(3, random_state=0)
    assert_array_equal(np.random.get_state()[1], np_state[1])
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert random.getstate() == py_state


@pytest.mark.parametrize("dump_load", ["pickle", "joblib"])
def test_persistence_round_trip(fitted, blobs, tmp_path, dump_load):
    if dump_load == "pickle":
        restored = pickle.loads(pickle.dumps(fitted))
    else:
        joblib.dump(fitted, tmp_path / "vae.joblib")
        restored = joblib.load(tmp_path / "vae.joblib")
    assert_array_equal(restored.transform(blobs), fitted.transform(blobs))
    assert_array_equal(restored.score_samples(blobs), fitted.score_samples(blobs))
    assert_array_equal(
        restored.sample(3, random_state=0), fitted.sample(3, random_state=0)
    )


def test_model_from_a_gpu_unpickles_on_a_cpu_only_machine(fitted, blobs):
    # Pretend the model lives on CUDA: the pickle must hold CPU tensors and load
    # where CUDA is absent.
    fitted.device_ = torch.device("cuda")
    restored = pickle.loads(pickle.dumps(fitted))
    fitted.device_ = torch.device("cpu")
    if not torch.cuda.is_available():
        assert restored.device_ == torch.device("cpu")
    assert_array_equal(restored.transform(blobs), fitted.transform(blobs))


def test_early_stopping_records_validation_and_restores_best(blobs, monkeypatch):
    snapshots = []
    original = _training.validation_loss

    def spy(module, X, eps, *args):
        loss = original(module, X, eps, *args)
        snapshots.append((loss.item(), _training._snapshot(module)))
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


def test_unused_dimensions_show_in_kl_per_component():
    # 3-D structure in 12 features, 6 latent dimensions: 3 carry information.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 12))
    X += 0.1 * rng.normal(size=(300, 12))
    vae = VAETransformer(6, random_state=0).fit(X)
    kl = np.sort(vae.kl_per_component_)[::-1]
    # Measured: [3.86 3.61 3.27 0.69 0.48 0.35]. The last three are PPCA's own
    # reading of sampling noise (e.g. eigenvalue 0.011 against a noise variance
    # of 0.0027 gives 0.70 nats), several times below the informative ones.
    assert np.all(kl[:3] > 2.0)
    assert np.all(kl[3:] < 0.25 * kl[:3].min())


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
    with pytest.raises(FloatingPointError, match=r"epoch 1.*learning_rate"):
        VAETransformer(2, **FAST, early_stopping=False).fit(blobs)


def test_non_finite_loss_in_first_epoch_falls_back_to_the_start(blobs, monkeypatch):
    # With early stopping, the validated starting point is a good state to keep.
    monkeypatch.setattr(_training, "train_epoch", _breaking_epoch(1))
    vae = VAETransformer(2, **FAST)
    with pytest.warns(RuntimeWarning, match="epoch 1"):
        vae.fit(blobs)
    assert vae.n_iter_ == 0
    assert np.all(np.isfinite(vae.transform(blobs)))


def test_huge_learning_rate_never_gives_nan_features(blobs):
    vae = VAETransformer(2, max_iter=20, learning_rate=1e6, random_state=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            vae.fit(blobs)
    except FloatingPointError:
        return
    assert np.all(np.isfinite(vae.transform(blobs)))


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


def test_bernoulli_likelihood_on_pixels():
    X = load_digits().data[:300] / 16.0
    vae = VAETransformer(2, likelihood="bernoulli", max_iter=30, random_state=0).fit(X)
    assert_array_equal(vae.mean_, 0.0)
    probs = vae.inverse_transform(vae.transform(X))
    assert probs.min() >= 0.0 and probs.max() <= 1.0
    binary = vae.sample(10, random_state=0)
    assert set(np.unique(binary)) <= {0.0, 1.0}
    assert np.all(vae.score_samples(X) < 0)  # log-probabilities of discrete data


def test_bernoulli_rejects_data_outside_unit_interval():
    X = load_digits().data[:50]
    with pytest.raises(ValueError, match=r"bernoulli.*\[0, 1\].*\[0, 16\]"):
        VAETransformer(likelihood="bernoulli").fit(X)


# --- inputs that must be handled ---------------------------------------------


def test_batch_size_larger_than_data_is_clamped(blobs):
    vae = VAETransformer(2, batch_size=10_000, **FAST).fit(blobs[:20])
    assert vae.n_iter_ == 10


def test_last_batch_of_one_row(blobs):
    vae = VAETransformer(2, batch_size=16, **FAST).fit(blobs[:33])
    assert np.all(np.isfinite(vae.transform(blobs)))


@pytest.mark.parametrize("n_samples", [2, 3, 5])
@pytest.mark.parametrize("early_stopping", [True, False])
def test_tiny_data(n_samples, early_stopping):
    X = np.random.RandomState(0).normal(size=(n_samples, 4))
    vae = VAETransformer(2, max_iter=5, early_stopping=early_stopping, random_state=0)
    vae.fit(X)
    assert np.all(np.isfinite(vae.transform(X)))
    assert np.all(np.isfinite(vae.score_samples(X)))


def test_constant_columns(blobs):
    X = np.hstack([blobs, np.full((200, 1), 7.0), np.zeros((200, 1))])
    vae = VAETransformer(2, **FAST).fit(X)
    assert_array_equal(vae.scale_[-2:], 1.0)
    assert np.all(np.isfinite(vae.transform(X)))
    assert np.all(np.isfinite(vae.score_samples(X)))
    assert_allclose(vae.inverse_transform(vae.transform(X))[:, -2], 7.0, atol=0.5)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, bool])
def test_integer_and_boolean_arrays(blobs, dtype):
    X = (blobs > 0).astype(dtype)
    vae = VAETransformer(2, **FAST).fit(X)
    assert vae.transform(X).dtype == np.float64


def test_readonly_memmap_and_non_contiguous_input(blobs, tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, np.asfortranarray(blobs))
    X = np.load(path, mmap_mode="r")
    vae = VAETransformer(2, **FAST).fit(X)  # warnings are errors in this suite
    strided = np.hstack([blobs, blobs])[:, ::2]
    assert not strided.flags.c_contiguous
    vae.transform(strided)
    vae.score_samples(X)


def test_lists_are_accepted(blobs):
    vae = VAETransformer(2, **FAST).fit(blobs.tolist())
    assert vae.transform(blobs[:3].tolist()).shape == (3, 2)


# --- inputs that must be rejected with a clear error ----------------------------


@pytest.mark.parametrize(
    "method", ["transform", "inverse_transform", "score_samples", "score", "sample"]
)
def test_methods_before_fit_raise_not_fitted(method):
    args = () if method == "sample" else (np.zeros((2, 2)),)
    with pytest.raises(NotFittedError):
        getattr(VAETransformer(), method)(*args)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_input_is_rejected(blobs, bad):
    # NaN marks a missing value (see test_tabular.py); infinity is an error.
    X = blobs.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match=r"infinity"):
        VAETransformer(**FAST).fit(X)
    vae = VAETransformer(**FAST).fit(blobs)
    with pytest.raises(ValueError, match=r"infinity"):
        vae.transform(X)


@pytest.mark.parametrize(
    "X, match",
    [
        (np.array([["a", "b"], ["c", "d"]], dtype=object), "convert|string"),
        (np.array([[1 + 2j, 2], [3, 4j]]), "Complex"),
        (np.arange(5.0), "2D array"),
        (np.empty((0, 3)), "0 sample"),
        (np.ones((1, 3)), "1 sample"),
    ],
    ids=["strings", "complex", "1-D", "empty", "one row"],
)
def test_invalid_arrays_are_rejected(X, match):
    with pytest.raises(ValueError, match=match):
        VAETransformer(**FAST).fit(X)


def test_sparse_input_is_rejected_with_advice(blobs):
    with pytest.raises(TypeError, match=r"dense data is required.*toarray"):
        VAETransformer(**FAST).fit(sp.csr_matrix(blobs))


def test_wrong_width_at_transform(fitted, blobs):
    with pytest.raises(
        ValueError, match="X has 5 features, but VAETransformer is expecting 6 features"
    ):
        fitted.transform(blobs[:, :5])
    with pytest.raises(ValueError, match="expecting 6 features"):
        fitted.score_samples(blobs[:, :5])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": 0}, "n_components"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"beta": -1.0}, "beta"),
        ({"hidden_layer_sizes": (64, 0)}, "hidden_layer_sizes must be positive"),
        ({"hidden_layer_sizes": (64.5,)}, "sequence of positive ints"),
        ({"hidden_layer_sizes": [[1, 2]]}, "sequence of positive ints"),
        ({"device": "tpu9"}, "not a valid torch device"),
        ({"random_state": "seed"}, "random_state"),
    ],
)
def test_invalid_parameters_are_rejected_before_training(blobs, params, match):
    with pytest.raises(ValueError, match=match):
        VAETransformer(**params).fit(blobs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_without_cuda_is_a_clear_error(blobs):
    with pytest.raises(ValueError, match="CUDA is not available"):
        VAETransformer(device="cuda").fit(blobs)


def test_hidden_layer_sizes_accepts_int_and_list(blobs):
    for sizes in (16, [16, 8], np.array([16])):
        vae = VAETransformer(2, **{**FAST, "hidden_layer_sizes": sizes}).fit(blobs)
        assert vae.get_params()["hidden_layer_sizes"] is sizes
    assert_array_equal(clone(vae).hidden_layer_sizes, sizes)


# --- GPU ---------------------------------------------------------------------


@pytest.mark.gpu
def test_fit_on_cuda_and_use_on_cpu(blobs):
    vae = VAETransformer(2, **{**FAST, "device": "cuda"}).fit(blobs)
    assert vae.device_.type == "cuda"
    assert next(vae.module_.parameters()).is_cuda
    Z = vae.transform(blobs)
    restored = pickle.loads(pickle.dumps(vae))
    assert_allclose(restored.transform(blobs), Z, atol=1e-10)
    cpu = pickle.loads(pickle.dumps(vae))
    cpu.device_ = torch.device("cpu")
    cpu.module_ = cpu.module_.cpu()
    assert_allclose(cpu.transform(blobs), Z, atol=1e-8)


@pytest.mark.gpu
def test_auto_device_picks_cuda(blobs):
    assert VAETransformer(2, **FAST).fit(blobs).device_.type == "cuda"


# --- quality -----------------------------------------------------------------


def _digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.mark.parametrize("k", [2, 5])
def test_default_vae_features_beat_standardised_pca_on_digits(k):
    X_train, X_test, y_train, y_test = _digits_split()

    def accuracy(reducer):
        F_train = reducer.fit_transform(X_train)
        clf = LogisticRegression(max_iter=5000).fit(F_train, y_train)
        return clf.score(reducer.transform(X_test), y_test)

    pca = Pipeline([("scale", StandardScaler()), ("pca", PCA(k))])
    vae = VAETransformer(n_components=k, random_state=0)
    assert accuracy(vae) > accuracy(pca) + 0.02


@pytest.mark.parametrize("fraction, n_rows", [(0.9, 2), (0.99, 10)])
def test_validation_split_always_leaves_a_training_row(fraction, n_rows):
    X = np.random.RandomState(0).normal(size=(n_rows, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae = VAETransformer(1, max_iter=2, validation_fraction=fraction).fit(X)
    assert vae.n_iter_ == 2 and np.isfinite(vae.loss_curve_).all()


# --- bounded memory at inference --------------------------------------------------


def test_inference_chunks_are_sized_from_the_widest_layer_and_the_draws(blobs):
    from skvae._transformer import _CHUNK_ELEMENTS, chunk_rows

    vae = VAETransformer(2, hidden_layer_sizes=(64, 32), max_iter=2).fit(blobs)
    # The widest layer (64), not the input (6 columns), sizes the chunks.
    assert chunk_rows(vae.module_) == _CHUNK_ELEMENTS // 64
    assert chunk_rows(vae.module_, draws=32) == _CHUNK_ELEMENTS // (32 * 64)
    assert chunk_rows(vae.module_, width=1000) == _CHUNK_ELEMENTS // 1000
    assert chunk_rows(vae.module_, draws=10**9) == 1


def test_results_do_not_depend_on_the_chunk_size(blobs, monkeypatch):
    import skvae._transformer as transformer

    vae = VAETransformer(2, **FAST).fit(blobs)
    Z = vae.transform(blobs)
    decoded = vae.inverse_transform(Z)
    scores = vae.score_samples(blobs)
    # 2**12 elements: chunks of 4 rows for score_samples' 32 draws, 128 for transform.
    monkeypatch.setattr(transformer, "_CHUNK_ELEMENTS", 2**12)
    assert transformer.chunk_rows(vae.module_, draws=32) == 4
    assert_array_equal(vae.transform(blobs), Z)
    assert_array_equal(vae.inverse_transform(Z), decoded)
    # The mean over draws is a reduction whose rounding follows the chunk's shape.
    assert_allclose(vae.score_samples(blobs), scores, rtol=1e-13, atol=0)


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


def test_auto_budget_resolves_per_fit(blobs):
    vae = VAETransformer(2, hidden_layer_sizes=(32,), random_state=0)
    assert vae.get_params()["batch_size"] == vae.get_params()["max_iter"] == "auto"
    assert vae._budget(600) == (256, 3_334)  # 3 steps an epoch
    assert VAETransformer(batch_size=64, max_iter=7)._budget(270) == (64, 7)
    with pytest.raises(ValueError, match="batch_size"):
        VAETransformer(batch_size="big").fit(blobs)


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


def test_validation_rows_are_capped(blobs, monkeypatch):
    import skvae._transformer as face

    monkeypatch.setattr(face, "MAX_VALIDATION_ROWS", 7)
    seen = []
    train = face.train

    def spy(module, X_train, X_val, *args, **kwargs):
        seen.append((X_train.shape[0], X_val.shape[0]))
        return train(module, X_train, X_val, *args, **kwargs)

    monkeypatch.setattr(face, "train", spy)
    VAETransformer(2, **FAST).fit(blobs)
    assert seen == [(len(blobs) - 7, 7)]  # not the 20 of validation_fraction


@pytest.mark.parametrize("scaling", ["standard", "global"])
def test_scaling_starts_at_the_pca_of_the_matching_scale(blobs, scaling):
    """Before training, the ELBO is the PPCA log-likelihood of the scaled data.

    PPCA's noise is isotropic, so one global scale gives raw PCA's likelihood and
    per-column scales give standardised PCA's, both back in the data's units.
    """
    # Noise well above the decoder's variance floor, so the start is exact.
    noise = np.random.default_rng(0).normal(size=blobs.shape)
    X = (blobs + noise) * np.array([1.0, 10.0, 0.1, 1.0, 5.0, 1.0])
    vae = VAETransformer(
        2,
        scaling=scaling,
        hidden_layer_sizes=(16,),
        max_iter=1,
        learning_rate=1e-12,
        early_stopping=False,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)
    std = X.std(axis=0)
    if scaling == "global":
        assert_allclose(vae.scale_, np.sqrt(np.mean(std**2)))
        expected = PCA(2).fit(X).score(X)
    else:
        assert_allclose(vae.scale_, std)
        Z = StandardScaler().fit_transform(X)
        expected = PCA(2).fit(Z).score(Z) - np.log(std).sum()
    # The start is computed in float32 (test_model checks it exactly in float64):
    # agreement to a few hundredths of a nat, where the two scalings differ by ~2.
    assert vae.score(X) == pytest.approx(expected, abs=0.1)


def test_global_scaling_keeps_a_nearly_constant_column_small():
    """A column that is almost always 0 is not blown up to unit variance."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)) @ rng.normal(size=(3, 8)) * 3
    X[:, 0] = 0.0
    X[:2, 0] = 1.0  # nearly constant: std 0.07
    params = dict(n_components=3, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        standard = VAETransformer(**params).fit(X)
        shared = VAETransformer(scaling="global", **params).fit(X)
    # Standardised, a 1 in that column is 14 standard deviations out; under one
    # global scale it is a fraction of the typical column's spread.
    assert standard.scale_[0] == pytest.approx(X[:, 0].std())
    assert 1 / standard.scale_[0] > 14
    assert_allclose(shared.scale_, shared.scale_[0])
    assert 1 / shared.scale_[0] < 0.25
    # (Whether the model then scores such rows better depends on whether the rare
    # 1s fall in the training split; the digits benchmark measures it.)
