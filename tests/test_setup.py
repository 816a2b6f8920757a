"""The set-up of a fit (``skvae._setup``): budget, split, start, attributes."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skvae import VAETransformer, _setup, _training

from .helpers import FAST


@pytest.mark.parametrize("fraction, n_rows", [(0.9, 2), (0.99, 10)])
def test_validation_split_always_leaves_a_training_row(fraction, n_rows):
    X = np.random.RandomState(0).normal(size=(n_rows, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae = VAETransformer(1, max_iter=2, validation_fraction=fraction).fit(X)
    assert vae.n_iter_ == 2 and np.isfinite(vae.loss_curve_).all()


def test_auto_budget_resolves_per_fit(blobs):
    vae = VAETransformer(2, hidden_layer_sizes=(32,), random_state=0)
    assert vae.get_params()["batch_size"] == vae.get_params()["max_iter"] == "auto"
    assert _setup.budget(vae, 600) == (256, 3_334)  # 3 steps an epoch
    assert _setup.budget(VAETransformer(batch_size=64, max_iter=7), 270) == (64, 7)
    with pytest.raises(ValueError, match="batch_size"):
        VAETransformer(batch_size="big").fit(blobs)


def test_validation_rows_are_capped(blobs, monkeypatch):
    monkeypatch.setattr(_setup, "MAX_VALIDATION_ROWS", 7)
    seen = []
    train = _setup.train

    def spy(module, rows, held_out, *args, **kwargs):
        seen.append((rows.n_rows, held_out.X.shape[0]))
        return train(module, rows, held_out, *args, **kwargs)

    monkeypatch.setattr(_setup, "train", spy)
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


def test_a_fit_is_built_aside_and_taken_in_one_assignment(blobs):
    vae = VAETransformer(2, **FAST)
    fitted = _setup.fit_arrays(vae, blobs)
    assert not hasattr(vae, "module_")  # nothing fitted is set on the estimator
    for name in ("module_", "mean_", "scale_", "n_iter_", "kl_per_component_"):
        assert name in fitted
    reference = VAETransformer(2, **FAST).fit(blobs)
    vars(vae).update(fitted)
    assert_array_equal(vae.transform(blobs), reference.transform(blobs))


def test_a_refit_that_fails_in_training_keeps_the_old_model(blobs, monkeypatch):
    vae = VAETransformer(2, **{**FAST, "early_stopping": False}).fit(blobs)
    before = vae.transform(blobs)
    module, curve = vae.module_, list(vae.loss_curve_)

    def broken(*args, **kwargs):
        raise FloatingPointError("boom")

    monkeypatch.setattr(_training, "train_epoch", broken)
    with pytest.raises(FloatingPointError):
        vae.fit(blobs * 3.0)
    assert vae.module_ is module and vae.loss_curve_ == curve
    assert_array_equal(vae.transform(blobs), before)


def test_fit_and_a_first_partial_fit_set_the_columns_up_alike():
    from .helpers import make_table, with_holes

    table = with_holes(make_table(120))
    # A stream keeps few whole numbers numeric (its first batch cannot know
    # every level): asked for as discrete, fit does the same.
    families = {"i64": "discrete", "nint": "discrete"}
    fitted = VAETransformer(2, families=families, **{**FAST, "max_iter": 1}).fit(table)
    streamed = VAETransformer(2, families=families, **FAST).partial_fit(table)
    assert_allclose(streamed.mean_, fitted.mean_)
    assert_allclose(streamed.scale_, fitted.scale_)
    assert streamed.column_likelihoods_.tolist() == fitted.column_likelihoods_.tolist()
    for a, b in zip(streamed.categories_, fitted.categories_, strict=True):
        assert (a is None and b is None) or list(a) == list(b)
