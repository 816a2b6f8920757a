"""Inference (``skvae._inference``): bounded chunks, one encode path."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skvae import VAETransformer, _inference

from .helpers import FAST


@pytest.fixture
def fitted(blobs):
    return VAETransformer(3, **FAST).fit(blobs)


def test_transform_in_chunks_equals_whole(fitted, blobs, monkeypatch):
    whole = fitted.transform(blobs)
    monkeypatch.setattr(_inference, "CHUNK_ELEMENTS", 60)  # 10-row chunks
    assert_allclose(fitted.transform(blobs), whole, rtol=0, atol=1e-12)
    assert_allclose(
        fitted.score_samples(blobs),
        VAETransformer(3, **FAST).fit(blobs).score_samples(blobs),
        rtol=0,
        atol=1e-9,
    )


def test_sample_draws_in_chunks(monkeypatch):
    # sample decodes and draws chunk by chunk (its memory bounded whatever the
    # number of rows): the latent draws and the means are those of one pass,
    # the draws reproducible and of every class asked for.
    from .helpers import make_table

    table = make_table()
    vae = VAETransformer(2, **FAST).fit(table)
    means = vae.sample(95, noise=False, random_state=0)
    drawn = vae.sample(95, random_state=0)
    monkeypatch.setattr(_inference, "CHUNK_ELEMENTS", 640)  # chunks of 20 rows
    width = vae.module_.likelihood.n_outputs
    assert _inference.chunk_rows(vae.module_, width=width) == 20
    pd.testing.assert_frame_equal(vae.sample(95, noise=False, random_state=0), means)
    chunked = vae.sample(95, random_state=0)
    pd.testing.assert_frame_equal(vae.sample(95, random_state=0), chunked)
    assert chunked.shape == drawn.shape and (chunked.dtypes == drawn.dtypes).all()
    assert chunked.notna().all().all()


def test_inference_chunks_are_sized_from_the_widest_layer_and_the_draws(blobs):
    from skvae._inference import CHUNK_ELEMENTS, chunk_rows

    vae = VAETransformer(2, hidden_layer_sizes=(64, 32), max_iter=2).fit(blobs)
    # The widest layer (64), not the input (6 columns), sizes the chunks.
    assert chunk_rows(vae.module_) == CHUNK_ELEMENTS // 64
    assert chunk_rows(vae.module_, draws=32) == CHUNK_ELEMENTS // (32 * 64)
    assert chunk_rows(vae.module_, width=1000) == CHUNK_ELEMENTS // 1000
    assert chunk_rows(vae.module_, draws=10**9) == 1


def test_results_do_not_depend_on_the_chunk_size(blobs, monkeypatch):
    vae = VAETransformer(2, **FAST).fit(blobs)
    Z = vae.transform(blobs)
    decoded = vae.inverse_transform(Z)
    scores = vae.score_samples(blobs)
    # 2**12 elements: chunks of 16 rows for score_samples' 8 draws (32 units
    # wide), 128 rows for transform.
    monkeypatch.setattr(_inference, "CHUNK_ELEMENTS", 2**12)
    assert _inference.chunk_rows(vae.module_, draws=_inference.N_SCORE_DRAWS) == 16
    assert_array_equal(vae.transform(blobs), Z)
    assert_array_equal(vae.inverse_transform(Z), decoded)
    # The mean over draws is a reduction whose rounding follows the chunk's shape.
    assert_allclose(vae.score_samples(blobs), scores, rtol=1e-13, atol=0)


def test_every_method_that_reads_rows_checks_them_alike():
    # One encode-and-check path: transform used to skip the range check that
    # score_samples made.
    X = np.random.default_rng(0).random((50, 4))
    vae = VAETransformer(2, likelihood="bernoulli", **FAST).fit(X)
    outside = X.copy()
    outside[0, 0] = 2.0
    for method in (vae.transform, vae.score_samples, vae.score):
        with pytest.raises(ValueError, match=r"bernoulli.*\[0, 1\]"):
            method(outside)


def test_the_inference_functions_are_the_methods(fitted, blobs):
    codec, module = fitted.codec_, fitted.module_
    values, observed = _inference.encode_checked(codec, blobs, "gaussian", "ignore")
    Z = _inference.encode_mean(module, values)
    assert_array_equal(Z, fitted.transform(blobs))
    assert_array_equal(
        _inference.elbo_scores(module, codec, values, observed),
        fitted.score_samples(blobs),
    )
    decoded = _inference.decode_mean(module, Z, codec.width)
    assert_array_equal(
        _inference.to_output(codec, decoded, np.float64), fitted.inverse_transform(Z)
    )
    latent = _inference.latent_attributes(module, values)
    assert_allclose(latent["kl_per_component_"], fitted.kl_per_component_, rtol=1e-12)
    # explained_variance_ is PCA's: the variance of transform's output, n - 1.
    assert_allclose(
        latent["explained_variance_"], np.var(Z, axis=0, ddof=1), rtol=1e-10
    )


def test_imputation_means_do_not_depend_on_the_rows_around(fitted, blobs):
    values, observed = _inference.encode_checked(
        fitted.codec_, blobs, "gaussian", "ignore"
    )
    observed = observed.copy()
    observed[::3, 0] = False
    whole = _inference.impute_encoded(fitted.module_, values, observed)
    alone = _inference.impute_encoded(fitted.module_, values[:7], observed[:7])
    assert_allclose(alone, whole[:7], rtol=1e-12, atol=1e-12)


def test_imputation_means_are_the_conditional_mean_of_many_draws(monkeypatch):
    # A skewed column (mapped to normal scores) predicted by two others: each
    # fill is the importance-weighted mean in the data's units, and the default
    # draws estimate it closely. Measured: 0.15% from a 16,384-draw estimate on
    # average; 64 pseudo-random draws from the encoder's own Gaussian, averaged
    # in the model's units, were 17% off.
    from skvae import VAEImputer

    rng = np.random.default_rng(0)
    t = rng.normal(size=1000)
    table = pd.DataFrame(
        {
            "spend": np.exp(1.2 * t + 0.6 * rng.normal(size=1000)),
            "a": t + 0.5 * rng.normal(size=1000),
            "b": t + 0.5 * rng.normal(size=1000),
        }
    )
    table.loc[rng.random(1000) < 0.2, "spend"] = np.nan
    params = dict(hidden_layer_sizes=(32,), max_iter=40, random_state=0)
    imputer = VAEImputer(2, **params).fit(table)
    assert imputer.vae_.codec_.columns[0].knots is not None  # mapped
    rows = table[table["spend"].isna()]
    fills = imputer.transform(rows)["spend"].to_numpy()
    monkeypatch.setattr(_inference, "N_IMPUTE_DRAWS", 16_384)
    precise = imputer.transform(rows)["spend"].to_numpy()
    assert np.mean(np.abs(fills / precise - 1)) < 0.01
