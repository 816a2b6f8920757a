"""Dask collections: lazy outputs computed on a real distributed.LocalCluster."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from pandas.testing import assert_frame_equal, assert_series_equal
from scipy import stats
from sklearn.pipeline import make_pipeline

from skvae import VAETransformer

from .helpers import FAST, make_table, with_holes

dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    # Two worker processes, one thread each: the setting the docs recommend.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # port and resource notices from dask
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
        )
        with distributed.Client(cluster) as client:
            yield client
        cluster.close()


@pytest.fixture(scope="module")
def table():
    return with_holes(make_table(400)).set_axis(pd.RangeIndex(1000, 1400))


@pytest.fixture(autouse=True)
def keep_object_columns():
    # dask turns object columns into strings by default, which would make the
    # object column of True/False/None a column of "True"/"False" texts.
    import dask

    with dask.config.set({"dataframe.convert-string": False}):
        yield


@pytest.mark.slow
def test_dataframe_methods_stay_lazy_and_match_pandas(client, table):
    vae = VAETransformer(2, **FAST).fit(table)
    lazy = dd.from_pandas(table, npartitions=4)
    Z = vae.transform(lazy)
    assert isinstance(Z, dd.DataFrame)
    assert list(Z.columns) == ["vaetransformer0", "vaetransformer1"]
    computed = Z.compute()
    assert_allclose(computed.to_numpy(), vae.transform(table))
    assert computed.index.equals(table.index)
    decoded = vae.inverse_transform(Z)
    assert isinstance(decoded, dd.DataFrame)
    assert decoded.dtypes.equals(table.dtypes)  # meta: the training dtypes
    expected = vae.inverse_transform(vae.transform(table)).set_axis(table.index)
    assert_frame_equal(decoded.compute(), expected)
    scores = vae.score_samples(lazy)
    assert isinstance(scores, dd.Series)
    assert_series_equal(
        scores.compute(),
        pd.Series(vae.score_samples(table), index=table.index, name="score"),
        rtol=1e-12,
    )
    # score: the mean, computed (a bare TypeError on the lazy Scalar before),
    # and through a Pipeline too.
    assert vae.score(lazy) == pytest.approx(vae.score(table), rel=1e-12)
    pipe = make_pipeline(VAETransformer(2, **FAST)).fit(table)
    assert pipe.score(lazy) == pytest.approx(pipe.score(table), rel=1e-12)


def test_arrays_and_set_output(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 5))
    vae = VAETransformer(2, **FAST).fit(X)
    lazy = da.from_array(X, chunks=(70, 2))  # row blocks, split columns
    Z = vae.transform(lazy)
    assert isinstance(Z, da.Array) and Z.shape == (300, 2)
    assert_allclose(Z.compute(), vae.transform(X))
    assert_allclose(
        vae.inverse_transform(Z).compute(), vae.inverse_transform(Z.compute())
    )
    assert_allclose(vae.score_samples(lazy).compute(), vae.score_samples(X), rtol=1e-12)
    vae.set_output(transform="pandas")
    frame = vae.transform(lazy)
    assert isinstance(frame, dd.DataFrame)
    assert_allclose(frame.compute().to_numpy(), vae.transform(X).to_numpy())


@pytest.mark.slow
def test_fit_streams_the_partitions_of_a_dataframe(client, table, monkeypatch):
    import skvae._dask as skvae_dask

    # A small in-memory sample: the statistics and levels must come from the pass
    # over every partition, not from the sample.
    monkeypatch.setattr(skvae_dask, "SAMPLE_ROWS", 40)
    rare = table.copy()
    rare["obj"] = rare["obj"].astype(object)
    rare.loc[rare.index[-3:], "obj"] = "rare"  # only in the last partition
    lazy = dd.from_pandas(rare, npartitions=5)
    seen = []
    prepare = skvae_dask.prepare

    def spy(estimator, rows, statistics=None):
        seen.append(len(rows.X))
        return prepare(estimator, rows, statistics)

    monkeypatch.setattr(skvae_dask, "prepare", spy)
    vae = VAETransformer(2, max_iter=12, hidden_layer_sizes=(32,), random_state=0)
    vae.fit(lazy)
    assert seen and max(seen) < 100  # only the sample was ever in one piece
    assert vae.n_samples_seen_ == len(rare)
    assert "rare" in list(vae.categories_[list(rare.columns).index("obj")])
    means = rare.mean(numeric_only=True)
    assert vae.mean_[0] == pytest.approx(means["f64"])  # the whole column's mean
    assert vae.validation_scores_ and len(vae.loss_curve_) == vae.n_iter_
    # Same random_state, same model; and as good a model as one fitted in memory.
    again = VAETransformer(2, max_iter=12, hidden_layer_sizes=(32,), random_state=0)
    assert_allclose(again.fit(lazy).transform(rare), vae.transform(rare))
    monkeypatch.undo()
    in_memory = VAETransformer(2, max_iter=12, hidden_layer_sizes=(32,), random_state=0)
    assert vae.score(rare) > in_memory.fit(rare).score(rare) - 0.5


def test_fit_streams_the_blocks_of_an_array(client):
    rng = np.random.default_rng(0)
    X = np.tanh(rng.normal(size=(2000, 2))) @ rng.normal(size=(2, 6))
    lazy = da.from_array(X, chunks=(400, 3))
    vae = VAETransformer(2, max_iter=12, hidden_layer_sizes=(32,), random_state=0)
    vae.fit(lazy)
    assert vae.n_samples_seen_ == 2000 and vae.n_features_in_ == 6
    assert_allclose(vae.mean_, X.mean(axis=0))
    assert isinstance(vae.inverse_transform(vae.transform(X)), np.ndarray)
    in_memory = VAETransformer(2, max_iter=12, hidden_layer_sizes=(32,), random_state=0)
    assert vae.score(X) > in_memory.fit(X).score(X) - 0.5


def test_partial_fit_and_the_imputer_explain_what_to_do(table):
    from skvae import VAEImputer

    lazy = dd.from_pandas(table, npartitions=2)
    with pytest.raises(TypeError, match=r"partial_fit\(part.compute\(\)\)"):
        VAETransformer(**FAST).partial_fit(lazy)
    with pytest.raises(TypeError, match=r"map_partitions\(estimator.transform\)"):
        VAEImputer(**FAST).fit(lazy)
    vae = VAETransformer(2, **FAST)
    for part in lazy.partitions:
        vae.partial_fit(part.compute())
    assert vae.n_samples_seen_ == len(table)


def test_grid_search_on_the_cluster(client):
    import joblib
    from sklearn.model_selection import GridSearchCV

    X = np.random.default_rng(0).normal(size=(120, 4))
    search = GridSearchCV(VAETransformer(**FAST), {"n_components": [1, 2]}, cv=2)
    with joblib.parallel_config(backend="dask"):
        search.fit(X)
    assert search.best_params_["n_components"] in (1, 2)


def test_dask_ml_wrappers_call_partial_fit_and_transform_block_by_block(client):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dask-ml's own import-time notices
        wrappers = pytest.importorskip("dask_ml.wrappers")
    X = np.random.default_rng(0).normal(size=(600, 5))
    lazy = da.from_array(X, chunks=(200, 5))
    incremental = wrappers.Incremental(VAETransformer(2, **FAST), shuffle_blocks=False)
    incremental.fit(lazy)
    vae = incremental.estimator_
    assert (vae.n_samples_seen_, vae.n_iter_) == (600, 3)  # one call per block
    streamed = VAETransformer(2, **FAST)
    for block in np.split(X, 3):
        streamed.partial_fit(block)
    # The worker trains with one torch thread, this process with its default:
    # float32 products round differently with the split (measured: 2 of 1,200
    # values off by 2e-7 relative on a 2-core AVX-512 CPU).
    assert_allclose(vae.transform(X), streamed.transform(X), rtol=1e-5, atol=1e-6)
    post_fit = wrappers.ParallelPostFit(VAETransformer(2, **FAST)).fit(X)
    assert_allclose(post_fit.transform(lazy).compute(), post_fit.estimator.transform(X))


def test_the_local_scheduler_leaves_torch_threads_as_they_were(table):
    import dask
    import torch

    vae = VAETransformer(2, **FAST).fit(table)
    before = torch.get_num_threads()
    lazy = dd.from_pandas(table, npartitions=8)
    with dask.config.set(scheduler="threads", num_workers=4):
        vae.transform(lazy).compute()
    assert torch.get_num_threads() == before


def test_fit_checks_every_period_of_partitions(client, monkeypatch):
    from skvae import _training

    monkeypatch.setattr(_training, "PERIOD_ROWS", 700)
    rng = np.random.default_rng(0)
    X = np.tanh(rng.normal(size=(2000, 2))) @ rng.normal(size=(2, 6))
    lazy = da.from_array(X, chunks=(400, 6))
    vae = VAETransformer(2, max_iter=2, hidden_layer_sizes=(32,), random_state=0)
    vae.fit(lazy)
    # Five blocks of about 360 training rows: a period ends after the second and
    # the fourth, the fifth makes a third.
    assert vae.n_iter_ == 2
    assert len(vae.loss_curve_) == len(vae.validation_scores_) == 6


def test_global_scaling_comes_from_the_pass_over_all_partitions(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 4)) * np.array([1.0, 3.0, 0.5, 2.0])
    lazy = da.from_array(X, chunks=(300, 4))
    vae = VAETransformer(2, scaling="global", max_iter=2, random_state=0)
    vae.fit(lazy)
    assert_allclose(vae.scale_, np.sqrt(np.mean(X.std(axis=0) ** 2)))


def test_quantile_maps_come_from_the_sample_in_the_pass_s_units(client):
    # The knots are the set-up sample's quantiles (approximate), re-expressed
    # in the units of the moments of the pass over every partition.
    rng = np.random.default_rng(0)
    X = rng.lognormal(0.0, 1.0, size=(1200, 2))
    lazy = da.from_array(X, chunks=(300, 2))
    vae = VAETransformer(2, scaling="quantile", max_iter=2, random_state=0)
    vae.fit(lazy)
    assert_allclose(vae.mean_, X.mean(axis=0))
    for j, column in enumerate(vae._codec.columns):
        values = column.knots[0] * column.scale + column.mean
        tolerance = 1e-9 * X[:, j].max()  # the units' rounding
        assert values[0] >= X[:, j].min() - tolerance
        assert values[-1] <= X[:, j].max() + tolerance
        shares = (X[:, j][:, None] < values).mean(axis=0)
        assert_allclose(shares, stats.norm.cdf(column.knots[1]), atol=0.05)
    assert np.isfinite(vae.score_samples(lazy).compute()).all()


def test_empty_partitions_left_by_a_filter(client, table):
    # Filtering a dask frame leaves empty partitions; every lazy method takes them.
    vae = VAETransformer(2, **FAST).fit(table)
    lazy = dd.from_pandas(table, npartitions=4)
    # The rows of the first partitions only, as a filter leaves them.
    kept = lazy.map_partitions(lambda p: p[p.index < 1150], meta=table.iloc[:0])
    sizes = kept.map_partitions(len).compute().tolist()
    assert 0 in sizes and sum(sizes) > 0
    rows = table[table.index < 1150]
    Z = vae.transform(kept).compute()
    assert_allclose(Z.to_numpy(), vae.transform(rows))
    assert_allclose(vae.score_samples(kept).compute(), vae.score_samples(rows))
    back = vae.inverse_transform(vae.transform(kept)).compute()
    assert_frame_equal(
        back, vae.inverse_transform(vae.transform(rows)).set_axis(back.index)
    )
    nothing = lazy[lazy["f64"] > 1e9]
    assert vae.transform(nothing).compute().shape == (0, 2)


def test_a_filter_that_leaves_no_rows_is_a_clear_error(client, table):
    vae = VAETransformer(2, **FAST).fit(table)
    before = vae.transform(table)
    lazy = dd.from_pandas(table, npartitions=4)
    with pytest.raises(ValueError, match="no rows: its 4 partitions are all empty"):
        vae.fit(lazy[lazy["f64"] > 1e9])
    masked = da.from_array(np.ones((40, 2)), chunks=10)
    with pytest.raises(ValueError, match="no rows"):
        VAETransformer(2, **FAST).fit(masked[masked[:, 0] > 2])
    assert_allclose(vae.transform(table), before)  # the fitted model stands


def test_fit_an_array_a_mask_left_with_unknown_and_empty_blocks(client):
    # A boolean mask leaves a dask array's block lengths unknown (nan), and
    # here the last two blocks empty, on which dask's nanmin fails.
    X = np.random.default_rng(0).normal(size=(400, 3))
    keep = np.arange(400) < 150
    lazy = da.from_array(X, chunks=(100, 3))[da.from_array(keep, chunks=100)]
    assert np.isnan(lazy.chunks[0]).all()
    vae = VAETransformer(2, **FAST).fit(lazy)
    assert np.isnan(lazy.chunks[0]).all()  # the caller's array as it was
    assert vae.n_samples_seen_ == 150
    assert_allclose(vae.mean_, X[keep].mean(axis=0))
    assert_allclose(vae.transform(lazy).compute(), vae.transform(X[keep]), atol=1e-6)


def test_imputer_transform_maps_over_partitions_with_empty_ones(client, table):
    from skvae import VAEImputer

    imputer = VAEImputer(2, **FAST).fit(table)
    lazy = dd.from_pandas(table, npartitions=4)
    kept = lazy.map_partitions(lambda p: p[p.index < 1150], meta=table.iloc[:0])
    filled = kept.map_partitions(imputer.transform).compute()
    assert_frame_equal(filled, imputer.transform(table[table.index < 1150]))


def test_magnitudes_too_large_for_a_dask_pass_are_a_clear_error(client):
    X = np.random.default_rng(0).normal(size=(400, 3))
    X[:, 1] *= 1e200
    lazy = da.from_array(X, chunks=(100, 3))
    with pytest.raises(ValueError, match=r"Column 1 .*too large.*fit it in memory"):
        VAETransformer(2, **FAST).fit(lazy)


# -- category columns whose levels dask does not know ------------------------------
def levels_table(n=300, seed=0):
    """Two numbers and a column of three levels, the first rows of one level only.

    The first partition then declares fewer levels than the others when dask
    types the column per partition.
    """
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n)
    levels = np.where(t > 0.5, "hi", np.where(t < -0.5, "lo", "mid")).astype(object)
    levels[: n // 3] = "lo"
    return pd.DataFrame(
        {
            "x": t + 0.1 * rng.normal(size=n),
            "y": rng.normal(size=n),
            "c": levels,
        }
    ).set_axis(pd.RangeIndex(500, 500 + n))


def check_levels_like_in_memory(lazy, column="c"):
    """Fit ``lazy``; compare with an in-memory fit of the computed frame."""
    from dask.dataframe.utils import UNKNOWN_CATEGORIES

    computed = lazy.compute()
    # Two epochs: the levels do not depend on training, and every epoch of a
    # dask fit computes each partition again.
    params = dict(FAST, max_iter=2)
    vae = VAETransformer(2, **params).fit(lazy)
    in_memory = VAETransformer(2, **params).fit(computed)
    j = list(computed.columns).index(column)
    assert list(vae.categories_[j]) == list(in_memory.categories_[j])
    assert UNKNOWN_CATEGORIES not in list(vae.categories_[j])
    learned = in_memory.sample(1, random_state=0)[column].dtype
    assert isinstance(learned, pd.CategoricalDtype)

    def same_dtype(series):
        # CategoricalDtype's == ignores the order of unordered levels.
        dtype = series.dtype
        assert dtype == learned, dtype
        assert list(dtype.categories) == list(learned.categories)

    drawn = vae.sample(300, random_state=0)
    same_dtype(drawn[column])
    assert UNKNOWN_CATEGORIES not in set(drawn[column].astype(object))
    # Lazy and in-memory input alike, whatever categories each partition declares.
    Z = vae.transform(lazy)
    assert_allclose(Z.compute().to_numpy(), vae.transform(computed), atol=1e-5)
    back = vae.inverse_transform(Z)
    same_dtype(back[column])  # meta
    same_dtype(back.compute()[column])
    same_dtype(vae.inverse_transform(vae.transform(computed))[column])
    for part in lazy.partitions:  # one partition's own category dtype, in memory
        rows = part.compute()
        assert_allclose(vae.transform(rows), vae.transform(computed.loc[rows.index]))
    return vae


def test_fit_a_column_dask_made_categorical(client):
    # Partitions typed one by one, of pyarrow strings whose meta has str levels:
    # dask's value_counts failed to join them ("dtype of categories must be the
    # same") or, on a cluster, counted its placeholder as a level.
    import dask

    with dask.config.set({"dataframe.convert-string": True}):
        lazy = dd.from_pandas(levels_table(), npartitions=3)
        lazy["c"] = lazy["c"].astype("category")
        assert not lazy["c"].cat.known
        vae = check_levels_like_in_memory(lazy)
    # The union in order of first appearance: the first partition holds "lo" only.
    assert list(vae.categories_[2]) == ["lo", "hi", "mid"]


def test_fit_a_column_of_unknown_categories_over_many_partitions(client):
    # dask's value_counts counts its placeholder level once per partial result,
    # which made the counts' index repeat labels.
    table = levels_table()
    table["c"] = table["c"].astype("category")
    lazy = dd.from_pandas(table, npartitions=5)
    lazy["c"] = lazy["c"].cat.as_unknown()
    vae = check_levels_like_in_memory(lazy)
    assert list(vae.categories_[2]) == ["hi", "lo", "mid"]  # as declared


def test_fit_parquet_files_declaring_different_categories(client, tmp_path):
    pytest.importorskip("pyarrow", reason="pandas writes parquet with pyarrow")
    table = levels_table()
    # Each file declares its own levels, one of them never observed ("zz"): the
    # sample used to join them as plain strings, learning dask's placeholder.
    declared = [["mid", "lo"], ["lo", "mid", "hi"], ["hi", "zz", "mid", "lo"]]
    for i, levels in enumerate(declared):
        rows = table.iloc[100 * i : 100 * (i + 1)].copy()  # the first: "lo" only
        rows["c"] = pd.Categorical(rows["c"], categories=levels)
        rows.to_parquet(tmp_path / f"part.{i}.parquet")
    lazy = dd.read_parquet(tmp_path)
    assert lazy.npartitions == 3 and not lazy["c"].cat.known
    vae = check_levels_like_in_memory(lazy)
    assert list(vae.categories_[2]) == ["mid", "lo", "hi", "zz"]


def test_a_dask_fit_draws_holes_like_the_table(client, table):
    # The hole model is fitted on the set-up sample, as the latent attributes.
    lazy = dd.from_pandas(table, npartitions=4)
    vae = VAETransformer(2, **FAST).fit(lazy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        drawn = vae.sample(2000, random_state=0, missing=True)
    assert drawn.dtypes.equals(table.dtypes)
    assert_allclose(drawn.isna().mean(), table.isna().mean(), atol=0.07)
