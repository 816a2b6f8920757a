"""``sample_weight``: weights act as repetitions, and a fit ignores row order."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from skvae import VAETransformer

from .helpers import FAST, make_table, with_holes


@pytest.fixture(scope="module")
def table():
    return with_holes(make_table(120), 0.1)


def test_integer_weights_act_as_repetitions_on_a_mixed_table(table):
    weights = np.random.default_rng(0).integers(0, 4, len(table))
    repeated = table.loc[table.index.repeat(weights)].sample(frac=1, random_state=0)
    a = VAETransformer(2, **FAST).fit(table, sample_weight=weights)
    b = VAETransformer(2, **FAST).fit(repeated)
    assert_allclose(a.transform(table), b.transform(table))
    assert_allclose(a.mean_, b.mean_)
    assert_allclose(a.scale_, b.scale_)


def test_a_zero_weight_row_is_left_out(table):
    extra = table.iloc[:5].copy()
    extra["obj"] = "only-here"  # a level seen in zero-weight rows only
    extra["f64"] = 1e6  # a value far out, which would move the mean and scale
    combined = pd.concat([table, extra], ignore_index=True)
    assert (combined.dtypes == table.dtypes).all()
    weights = np.r_[np.ones(len(table)), np.zeros(5)]
    a = VAETransformer(2, **FAST).fit(combined, sample_weight=weights)
    b = VAETransformer(2, **FAST).fit(table)
    assert "only-here" not in a.categories_[list(table.columns).index("obj")]
    assert_allclose(a.transform(table), b.transform(table))


def test_the_fit_does_not_depend_on_row_order(blobs):
    shuffled = blobs[np.random.default_rng(1).permutation(len(blobs))]
    a = VAETransformer(2, **FAST).fit(blobs)
    b = VAETransformer(2, **FAST).fit(shuffled)
    assert_allclose(a.transform(blobs), b.transform(blobs))


def test_weights_move_the_statistics_and_the_model(blobs):
    weights = np.where(blobs[:, 0] > 0, 5.0, 0.5)
    vae = VAETransformer(2, **FAST).fit(blobs, sample_weight=weights)
    assert_allclose(vae.mean_, np.average(blobs, axis=0, weights=weights))
    plain = VAETransformer(2, **FAST).fit(blobs)
    heavy = blobs[blobs[:, 0] > 0]
    # The weighted model describes the heavily weighted rows better.
    assert vae.score(heavy) > plain.score(heavy)


def test_only_relative_fractional_weights_matter(blobs):
    weights = np.random.default_rng(0).integers(1, 4, len(blobs)) + 0.5
    a = VAETransformer(2, **FAST).fit(blobs, sample_weight=weights)
    b = VAETransformer(2, **FAST).fit(blobs, sample_weight=weights / 4)
    assert_allclose(a.transform(blobs), b.transform(blobs))


def test_duplicated_rows_train_as_the_rows_they_are(blobs):
    # Equal rows are merged, then spread back out: as many rows and mini-batches
    # as given, in an order of their values.
    X = np.vstack([blobs, blobs[:50]])
    vae = VAETransformer(2, **FAST).fit(X)
    assert vae.n_samples_seen_ == 250
    weighted = VAETransformer(2, **FAST).fit(
        blobs, sample_weight=np.r_[np.full(50, 2), np.ones(150)]
    )
    assert_allclose(vae.transform(blobs), weighted.transform(blobs))


def test_sample_weight_through_a_pipeline(blobs):
    y = blobs[:, 1] > 0
    weights = np.where(y, 1.0, 3.0)
    pipe = Pipeline([("vae", VAETransformer(2, **FAST)), ("clf", LogisticRegression())])
    pipe.fit(blobs, y, vae__sample_weight=weights, clf__sample_weight=weights)
    alone = VAETransformer(2, **FAST).fit(blobs, sample_weight=weights)
    assert_allclose(pipe[0].transform(blobs), alone.transform(blobs))


def test_weights_with_labels_keep_labels_apart(blobs):
    # Equal rows with different labels are not merged.
    X = np.vstack([blobs, blobs])
    y = np.r_[np.zeros(200, int), np.ones(200, int)]
    vae = VAETransformer(2, target_weight=1, **FAST).fit(X, y)
    assert list(vae.classes_) == [0, 1]


@pytest.mark.parametrize(
    "weights, match",
    [
        (-np.ones(200), "Negative values in data passed to `sample_weight`"),
        (np.ones(5), r"sample_weight.shape == \(5,\), expected \(200,\)"),
        (np.zeros(200), "at least one non-zero"),
        (np.r_[np.nan, np.ones(199)], "NaN"),
    ],
    ids=["negative", "length", "all-zero", "nan"],
)
def test_bad_weights_get_clear_errors(blobs, weights, match):
    with pytest.raises(ValueError, match=match):
        VAETransformer(2, **FAST).fit(blobs, sample_weight=weights)


def test_partial_fit_takes_weights(blobs):
    vae = VAETransformer(2, **FAST)
    weights = np.r_[np.zeros(20), np.ones(180)]
    vae.partial_fit(blobs, sample_weight=weights)
    assert vae.n_samples_seen_ == 180  # the rows of weight 0 are not seen
    vae.partial_fit(blobs, sample_weight=np.linspace(0.5, 2, 200))
    assert np.isfinite(vae.loss_curve_).all() and len(vae.loss_curve_) == 2


def test_dask_fits_take_neither_weights_nor_labels(blobs):
    da = pytest.importorskip("dask.array")
    X = da.from_array(blobs, chunks=100)
    with pytest.raises(ValueError, match="sample_weight is not supported"):
        VAETransformer(2, **FAST).fit(X, sample_weight=np.ones(200))
    with pytest.raises(ValueError, match="does not take"):
        VAETransformer(2, target_weight=1, **FAST).fit(X, np.zeros(200))


def test_many_equal_rows_still_train_on_every_row():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, size=(20_000, 5)).astype(float)  # 32 distinct rows
    vae = VAETransformer(2, max_iter=2, hidden_layer_sizes=(8,), random_state=0)
    vae.fit(X)
    assert vae.n_samples_seen_ == 20_000


def test_labels_of_zero_weight_rows_do_not_count(blobs):
    y = np.r_[np.zeros(20, int), np.ones(20, int), np.full(160, 2)]
    weights = np.r_[np.zeros(20), np.ones(180)]
    vae = VAETransformer(2, target_weight=1, **FAST).fit(
        blobs, y, sample_weight=weights
    )
    assert list(vae.classes_) == [1, 2]  # class 0 only had rows of weight 0
    y_semi = np.r_[np.zeros(10, int), np.ones(10, int), np.full(180, -1)]
    with pytest.raises(ValueError, match="no labelled rows"):
        VAETransformer(2, target_weight=1, **FAST).fit(
            blobs, y_semi, sample_weight=weights
        )


def test_huge_weights_weigh_as_their_ratios(blobs):
    # Weights near 1e300: their sums would overflow; only their ratios matter.
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=len(blobs))
    plain = VAETransformer(2, **FAST).fit(blobs, sample_weight=w)
    huge = VAETransformer(2, **FAST).fit(blobs, sample_weight=w * 1e300)
    assert np.isfinite(huge.mean_).all() and np.isfinite(huge.scale_).all()
    assert_allclose(huge.transform(blobs), plain.transform(blobs), atol=1e-6)


@pytest.mark.parametrize(
    "weights",
    [
        np.r_[1e308, np.ones(99)],
        np.full(100, 1e308),
        np.where(np.arange(100) % 2, 1e308, 1e-308),
        np.full(100, 5e-324),
        np.r_[np.full(50, 5e-324), np.ones(50)],
        np.r_[1e308, np.full(99, 5e-324)],
        np.r_[1e150, np.full(99, 5e-324)],
    ],
    ids=[
        "one-1e308",
        "all-1e308",
        "1e308-and-1e-308",
        "all-5e-324",
        "half-5e-324",
        "1e308-and-5e-324",
        "1e150-and-5e-324",
    ],
)
def test_extreme_weights_fit_finitely(blobs, weights):
    # Weights of 1e308 once gave LinAlgError or ZeroDivisionError (sums overflow);
    # the smallest positive doubles must not divide by zero either.
    X = blobs[:100]
    for fit_kwargs in ({}, {"y": (X[:, 0] > 0).astype(int)}):
        vae = VAETransformer(2, max_iter=3, target_weight=float(bool(fit_kwargs)))
        vae.set_params(hidden_layer_sizes=(16,), random_state=0)
        vae.fit(X, sample_weight=weights, **fit_kwargs)
        assert np.isfinite(vae.mean_).all() and np.isfinite(vae.scale_).all()
        assert np.isfinite(vae.loss_curve_).all()
        assert np.isfinite(vae.transform(X)).all()
    stream = VAETransformer(2, hidden_layer_sizes=(16,), random_state=0)
    stream.partial_fit(X, sample_weight=weights).partial_fit(X, sample_weight=weights)
    assert np.isfinite(stream.loss_curve_).all()


def test_a_huge_whole_weight_is_not_spread_out_as_copies():
    # A weight of 130,000 on one of 200 rows made 130,199 training rows (seconds
    # and hundreds of MB); copies are made only up to max(4 x rows, 4,096).
    from skvae._weights import as_repetitions, canonical_rows

    X = np.random.default_rng(0).normal(size=(200, 3))
    weights = np.r_[130_000.0, np.ones(199)]
    positions, kept = as_repetitions(*canonical_rows(X, weights), n_rows=200)
    assert len(positions) == 200
    assert sorted(kept) == sorted(weights)
    # Small whole weights are still spread out: four per row, or 4,096 rows.
    for weights, n_copies in [(np.full(200, 4.0), 800), (np.full(10, 400.0), 4_000)]:
        rows = X[: len(weights)]
        positions, kept = as_repetitions(*canonical_rows(rows, weights), len(rows))
        assert len(positions) == n_copies and np.all(kept == 1)
