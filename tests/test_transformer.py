"""Behaviour of VAETransformer that users rely on."""

import pickle
import random
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import skvae
from skvae import VAETransformer

from .helpers import FAST, make_table


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


@pytest.mark.slow
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
    # Eight latent features separate the digits far better than two (about 0.9
    # against 0.6 accuracy): the search must find that, in two processes.
    assert search.best_params_["vae__n_components"] == 8
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] > scores[0] + 0.1
    assert search.score(X_test, y_test) > 0.8  # chance is 0.1


def test_same_seed_same_fit_other_seed_other_fit(blobs):
    a = VAETransformer(2, **FAST).fit(blobs)
    b = VAETransformer(2, **FAST).fit(blobs)
    c = VAETransformer(2, **{**FAST, "random_state": 1}).fit(blobs)
    assert_array_equal(a.transform(blobs), b.transform(blobs))
    assert a.loss_curve_ == b.loss_curve_
    assert not np.allclose(a.transform(blobs), c.transform(blobs))


@pytest.mark.slow
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
    # Another process may split float32 products between its threads otherwise,
    # and the rounding follows the split: equal to a tolerance, not bitwise
    # (measured: differences of 2.6e-9 after 10 epochs on a 2-core AVX-512 CPU).
    here = VAETransformer(2, **FAST).fit(blobs).transform(blobs)
    assert_allclose(here, other, rtol=1e-5, atol=1e-6)


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
        ({"n_components": -1}, "n_components"),
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


# --- bounded memory at inference --------------------------------------------------
# --- a fit is all or nothing ----------------------------------------------------


def _interrupting(module_name):
    """A train_epoch that changes the weights, then raises KeyboardInterrupt."""
    import importlib

    target = importlib.import_module(module_name)
    original = target.train_epoch

    def train_epoch(module, optimizer, X, *args, **kwargs):
        original(module, optimizer, X, *args, **kwargs)  # the weights move...
        raise KeyboardInterrupt  # ... and Ctrl-C arrives before the epoch ends

    return target, train_epoch


def test_an_interrupted_refit_leaves_the_old_model(blobs, monkeypatch):
    from .helpers import make_table

    vae = VAETransformer(2, **FAST).fit(blobs)
    before, mean = vae.transform(blobs), vae.mean_.copy()
    target, interrupting = _interrupting("skvae._training")
    monkeypatch.setattr(target, "train_epoch", interrupting)
    with pytest.raises(KeyboardInterrupt):
        vae.fit(blobs * 10 + 3)  # other data: other column statistics
    assert_array_equal(vae.mean_, mean)
    assert_array_equal(vae.transform(blobs), before)
    with pytest.raises(KeyboardInterrupt):
        vae.fit(make_table())  # another table altogether
    assert vae.n_features_in_ == blobs.shape[1]
    assert not hasattr(vae, "feature_names_in_")
    assert_array_equal(vae.transform(blobs), before)


def test_a_refit_that_fails_validation_keeps_the_old_model():
    from .helpers import make_table

    table = make_table(60)
    vae = VAETransformer(2, **FAST).fit(table)
    before = vae.transform(table)
    other = table.rename(columns={"f64": "renamed"})
    with pytest.raises(ValueError, match=r"(?i)negative"):
        vae.fit(other, sample_weight=-np.ones(len(other)))
    assert list(vae.feature_names_in_) == list(table.columns)
    assert_array_equal(vae.transform(table), before)


def test_an_interrupted_first_fit_leaves_an_unfitted_estimator(blobs, monkeypatch):
    target, interrupting = _interrupting("skvae._training")
    monkeypatch.setattr(target, "train_epoch", interrupting)
    vae = VAETransformer(2, **FAST)
    with pytest.raises(KeyboardInterrupt):
        vae.fit(blobs)
    assert not hasattr(vae, "n_features_in_")
    with pytest.raises(NotFittedError):
        vae.transform(blobs)


def test_an_interrupted_batch_leaves_the_stream_as_it_was(blobs, monkeypatch):
    vae = VAETransformer(2, **FAST)
    vae.partial_fit(blobs[:100])
    before, n_iter = vae.transform(blobs), vae.n_iter_
    target, interrupting = _interrupting("skvae._streaming")
    monkeypatch.setattr(target, "train_epoch", interrupting)
    with pytest.raises(KeyboardInterrupt):
        vae.partial_fit(blobs[100:])
    assert vae.n_iter_ == n_iter and vae.n_samples_seen_ == 100
    assert_array_equal(vae.transform(blobs), before)
    monkeypatch.undo()
    vae.partial_fit(blobs[100:])  # the stream goes on
    assert vae.n_iter_ == n_iter + 1


def test_an_interrupted_first_batch_leaves_an_unfitted_estimator(blobs, monkeypatch):
    target, interrupting = _interrupting("skvae._streaming")
    monkeypatch.setattr(target, "train_epoch", interrupting)
    vae = VAETransformer(2, **FAST)
    with pytest.raises(KeyboardInterrupt):
        vae.partial_fit(blobs)
    with pytest.raises(NotFittedError):
        vae.transform(blobs)
    monkeypatch.undo()
    vae.partial_fit(blobs)
    assert vae.n_iter_ == 1


@pytest.mark.parametrize("estimator", [VAETransformer(), skvae.VAEImputer()])
def test_the_html_repr_links_to_the_api_page(estimator):
    name = type(estimator).__name__
    url = f"https://skvae.readthedocs.io/en/stable/generated/skvae.{name}.html"
    assert url in estimator._repr_html_()


# -- PCA's habits --------------------------------------------------------------------
def test_the_attributes_code_written_for_pca_reads(blobs):
    vae = VAETransformer(3, **FAST).fit(blobs)
    assert vae.n_components_ == 3
    vae.set_params(n_components=5)  # a parameter, not the fitted model
    assert vae.n_components_ == 3 and vae.transform(blobs).shape[1] == 3
    assert_allclose(
        vae.explained_variance_, np.var(vae.transform(blobs), axis=0, ddof=1)
    )
    assert_allclose(vae.explained_variance_ratio_.sum(), 1.0)
    assert_allclose(
        vae.explained_variance_ratio_,
        vae.kl_per_component_ / vae.kl_per_component_.sum(),
    )
    assert vae.noise_variance_.shape == (blobs.shape[1],)
    assert np.all(vae.noise_variance_ > 0)
    assert not hasattr(vae, "components_")
    with pytest.raises(AttributeError, match="inverse_transform"):
        vae.components_  # noqa: B018
    unfitted = VAETransformer()
    for name in ("n_components_", "explained_variance_ratio_", "noise_variance_"):
        with pytest.raises(NotFittedError):
            getattr(unfitted, name)


def test_noise_variance_is_per_column_in_the_units_of_the_data():
    table = make_table()
    vae = VAETransformer(2, **FAST).fit(table)
    gaussian = ~vae.is_categorical_  # every continuous family has a variance
    assert np.all(vae.noise_variance_[gaussian] > 0)
    assert np.all(np.isnan(vae.noise_variance_[~gaussian]))
    # No latent: each column's variance is its own (ddof=0, the MLE), in its units.
    X = np.random.default_rng(0).normal([0, 5], [10.0, 0.1], size=(500, 2))
    alone = VAETransformer(0, random_state=0).fit(X)
    assert_allclose(alone.noise_variance_, X.var(axis=0), rtol=0.05)


def test_n_components_0_is_the_independent_columns_model():
    # PCA accepts 0 (scikit-learn's PCA vs FactorAnalysis example starts its grid
    # there): here it is one Gaussian per column, the baseline of every latent.
    # (Iris's petal width has 5 rows at its minimum, a point mass for "auto".)
    X, _ = load_iris(return_X_y=True)
    vae = VAETransformer(0, families="gaussian", random_state=0).fit(X)
    assert vae.transform(X).shape == (150, 0)
    assert vae.get_feature_names_out().shape == (0,)
    independent = stats.norm.logpdf(X, X.mean(axis=0), X.std(axis=0)).sum(axis=1)
    assert vae.score(X) == pytest.approx(independent.mean(), abs=0.01)
    assert_allclose(
        vae.inverse_transform(np.zeros((2, 0))), [X.mean(axis=0)] * 2, atol=0.05
    )
    assert vae.sample(5, random_state=0).shape == (5, 4)
    # The pandas latent (no columns, so no dtype) decodes too, keeping its index.
    framed = clone(vae).set_output(transform="pandas").fit(X)
    Z = framed.transform(X[:3])
    assert Z.shape == (3, 0)
    assert_allclose(framed.inverse_transform(Z), vae.inverse_transform(Z.to_numpy()))
    assert_allclose(framed.inverse_transform(Z), [X.mean(axis=0)] * 3, atol=0.05)
    assert vae.kl_per_component_.shape == vae.explained_variance_ratio_.shape == (0,)
    search = GridSearchCV(VAETransformer(random_state=0), {"n_components": [0, 2]})
    assert search.fit(X).best_params_ == {"n_components": 2}
    restored = pickle.loads(pickle.dumps(vae))
    assert restored.score(X) == vae.score(X)
