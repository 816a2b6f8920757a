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
