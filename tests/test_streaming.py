"""partial_fit: training on a stream of batches."""

import copy
import dataclasses
import pickle
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_diabetes, load_iris

import skvae._streaming as streaming
from skvae import VAETransformer, _inference
from skvae._tabular import TableCodec

from .helpers import make_table, with_holes

STREAM = dict(hidden_layer_sizes=(32,), batch_size=64, random_state=0)


def batches(n_batches=6, rows=200, seed=0):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(2, 6))
    for _ in range(n_batches):
        t = rng.normal(size=(rows, 2))
        yield np.tanh(t) @ mixing + 0.05 * rng.normal(size=(rows, 6))


def test_each_call_is_one_pass_and_the_counts_carry_over():
    vae = VAETransformer(2, **STREAM)
    held_out = next(batches(1, 400, seed=1))
    scores = []
    for i, batch in enumerate(batches()):
        vae.partial_fit(batch)
        assert vae.n_iter_ == i + 1
        assert vae.n_samples_seen_ == 200 * (i + 1)
        assert len(vae.loss_curve_) == i + 1
        scores.append(vae.score(held_out))
    assert scores[-1] > scores[0]  # the stream keeps improving the model
    assert vae.transform(held_out).shape == (400, 2)
    assert np.isfinite(vae.kl_per_component_).all()
    assert vae.validation_scores_ is None


def test_a_stream_is_reproducible():
    a, b = VAETransformer(2, **STREAM), VAETransformer(2, **STREAM)
    for batch in batches(3):
        a.partial_fit(batch)
        b.partial_fit(batch)
    assert_array_equal(a.transform(batch), b.transform(batch))


@pytest.mark.parametrize("how", ["pickle", "skops"])
def test_a_saved_stream_continues_where_it_stopped(how):
    first, second = list(batches(2))
    straight = VAETransformer(2, **STREAM).partial_fit(first).partial_fit(second)
    saved = VAETransformer(2, **STREAM).partial_fit(first)
    if how == "pickle":
        loaded = pickle.loads(pickle.dumps(saved))
    else:
        sio = pytest.importorskip("skops.io")
        data = sio.dumps(saved)
        assert sio.get_untrusted_types(data=data) == [
            "skvae._transformer.VAETransformer"
        ]
        loaded = sio.loads(data, trusted=["skvae._transformer.VAETransformer"])
    loaded.partial_fit(second)
    assert_array_equal(loaded.transform(second), straight.transform(second))


def test_fit_starts_afresh_and_partial_fit_continues_a_fit():
    data = np.vstack(list(batches(2)))
    streamed = VAETransformer(2, **STREAM).partial_fit(data[:200])
    refitted = streamed.fit(data)
    assert not hasattr(refitted, "_stream")
    fresh = VAETransformer(2, **STREAM).fit(data)
    assert_array_equal(refitted.transform(data), fresh.transform(data))
    n_iter = fresh.n_iter_
    before = fresh.transform(data)
    fresh.partial_fit(data[:200])
    assert fresh.n_iter_ == n_iter + 1
    assert fresh.n_samples_seen_ == 600
    assert not np.array_equal(fresh.transform(data), before)


def test_a_first_batch_that_never_observes_a_column_says_how_to_start():
    table = make_table()
    first = table.iloc[:100].assign(f64=np.nan)
    with pytest.raises(ValueError, match=r"'f64' has no observed.*partial_fit: start"):
        VAETransformer(2, **STREAM).partial_fit(first)
    first = table.iloc[:100].assign(obj=None)
    with pytest.raises(ValueError, match=r"'obj' has no observed.*partial_fit: start"):
        VAETransformer(2, **STREAM).partial_fit(first)


def test_later_batches_need_the_first_batchs_columns():
    table = make_table()
    vae = VAETransformer(2, **STREAM).partial_fit(table.iloc[:120])
    # Missing values and unseen categories, as in fit.
    vae.partial_fit(with_holes(table.iloc[120:]))
    unseen = table.iloc[:30].copy()
    unseen["obj"] = "maybe"
    # A level the first batch did not set up: missing, with a warning that says
    # how to declare the levels.
    with pytest.warns(UserWarning, match=r"'obj': \['maybe'\].*CategoricalDtype"):
        vae.partial_fit(unseen)
    strict = VAETransformer(2, handle_unknown="error", **STREAM).partial_fit(table)
    with pytest.raises(ValueError, match=r"'obj'.*unseen.*\['maybe'\]"):
        strict.partial_fit(unseen)
    with pytest.raises(ValueError, match="feature names"):
        vae.partial_fit(table.drop(columns="f64"))
    numbers = table.copy()
    numbers["text"] = np.arange(len(table), dtype=float)
    with pytest.raises(ValueError, match=r"'text' had the levels.*numbers.*float64"):
        vae.partial_fit(numbers)
    texts = table.copy()
    texts["flag"] = texts["flag"].astype(str)  # True/False read back from a CSV
    with pytest.raises(ValueError, match=r"'flag' had the levels \[False, True\]"):
        vae.partial_fit(texts)
    with pytest.raises(ValueError, match="treated as continuous"):
        bad = table.copy()
        bad["f64"] = "x"
        vae.partial_fit(bad)


def test_a_non_finite_batch_changes_nothing(monkeypatch):
    first, second = list(batches(2))
    vae = VAETransformer(2, **STREAM).partial_fit(first)
    before = vae.transform(first)
    state = pickle.dumps(vae)
    original = streaming.train_epoch

    def poisoned(module, optimizer, *args, **kwargs):
        original(module, optimizer, *args, **kwargs)
        return torch.tensor(float("nan"))

    monkeypatch.setattr(streaming, "train_epoch", poisoned)
    with pytest.raises(FloatingPointError, match="restored"):
        vae.partial_fit(second)
    assert vae.n_iter_ == 1 and vae.n_samples_seen_ == 200
    assert_array_equal(vae.transform(first), before)
    monkeypatch.undo()
    again = pickle.loads(state).partial_fit(second)
    assert_allclose(vae.partial_fit(second).transform(first), again.transform(first))


def test_dataframes_stream_too():
    table = with_holes(make_table(600))
    vae = VAETransformer(2, **STREAM)
    for start in range(0, 600, 200):
        vae.partial_fit(table.iloc[start : start + 200])
    out = vae.inverse_transform(vae.transform(table))
    assert isinstance(out, pd.DataFrame) and out.dtypes.equals(table.dtypes)


# -- statistics that follow the stream ------------------------------------------------
def sorted_iris():
    X, _ = load_iris(return_X_y=True)
    return X  # stored species by species: the first batch is all one species


def test_the_column_statistics_follow_the_stream_whatever_its_order():
    X = sorted_iris()
    shuffled = X[np.random.default_rng(0).permutation(len(X))]
    models = []
    for rows in (X, shuffled):
        vae = VAETransformer(2, **STREAM)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the stored order warns
            for part in np.array_split(rows, 15):
                vae.partial_fit(part)
        models.append(vae)
        # As StandardScaler.partial_fit's: the moments of every row so far.
        assert_allclose(vae.mean_, X.mean(axis=0), rtol=1e-12)
        assert_allclose(vae.scale_, X.std(axis=0), rtol=1e-12)
        assert_array_equal(vae.codec_.continuous_attribute("low"), X.min(axis=0))
        assert_array_equal(vae.codec_.continuous_attribute("high"), X.max(axis=0))
    assert_allclose(models[0].scale_, models[1].scale_, rtol=1e-12)


def stream(rows, n_batches, seed=0):
    vae = VAETransformer(2, **{**STREAM, "random_state": seed})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sorted batches warn
        for part in np.array_split(rows, n_batches):
            vae.partial_fit(part)
    return vae


@pytest.mark.parametrize("name", ["iris, stored order", "diabetes, sorted by bmi"])
def test_the_order_of_the_batches_no_longer_decides_the_model(name):
    # The latent space and the noise variances follow the stream as the column
    # statistics do: before they did, the ordered streams scored 250 and 60 nats
    # per row below the shuffled ones (iris -255 vs -4.4, diabetes -44 vs 17.3);
    # now 4-5 and 2-3 nats, on every seed tried.
    if name.startswith("iris"):
        X, n_batches = sorted_iris(), 15
    else:
        X = load_diabetes().data
        X, n_batches = X[np.argsort(X[:, 2])], 10
    shuffled = X[np.random.default_rng(0).permutation(len(X))]
    ordered, mixed = stream(X, n_batches).score(X), stream(shuffled, n_batches).score(X)
    assert ordered > mixed - 10


def test_a_batch_like_the_rows_before_it_keeps_the_model(blobs):
    vae = VAETransformer(2, **STREAM).fit(blobs)
    before = (vae.transform(blobs), vae.noise_variance_.copy(), vae.score(blobs))
    vae.partial_fit(blobs[:100])
    after = (vae.transform(blobs), vae.noise_variance_, vae.score(blobs))
    corr = np.corrcoef(before[0].T, after[0].T)[:2, 2:]
    assert np.all(np.abs(np.diag(corr)) > 0.99)  # the same latent coordinates
    assert_allclose(after[0].std(axis=0), before[0].std(axis=0), rtol=0.2)
    assert_allclose(after[1], before[1], rtol=0.5)  # one posterior draw a row
    assert after[2] > before[2] - 0.5


def test_a_batch_unlike_the_rows_before_it_warns_with_what_to_do():
    X = sorted_iris()
    vae = VAETransformer(2, **STREAM).partial_fit(X[:50])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rows like those before: no warning
        vae.partial_fit(X[np.random.default_rng(0).permutation(50)[:10]])
    with pytest.warns(UserWarning, match=r"standard deviations.*shuffle"):
        vae.partial_fit(X[50:100])  # another species


def test_new_statistics_keep_what_the_model_learned(blobs):
    # The units change (VAE.change_units) re-expresses the model for the new
    # standardisation: the same posterior and density for every row.
    vae = VAETransformer(2, **STREAM).fit(blobs)
    codec, module = vae.codec_, vae.module_
    moved = copy.deepcopy(module)
    n = codec.n_continuous
    rng = np.random.default_rng(0)
    new_mean = codec.continuous_attribute("mean") + rng.normal(size=n)
    new_scale = codec.continuous_attribute("scale") * rng.uniform(0.5, 2, size=n)
    mean, scale = (
        codec.continuous_attribute("mean"),
        codec.continuous_attribute("scale"),
    )
    moved.change_units(new_scale / scale, (new_mean - mean) / scale)
    columns = [
        dataclasses.replace(c, mean=m, scale=s)
        for c, m, s in zip(codec.columns, new_mean, new_scale, strict=True)
    ]
    new_codec = TableCodec(columns, codec.is_frame, codec.standardize)
    results = []
    for model, c in ((module, codec), (moved, new_codec)):
        values, _ = _inference.encode_checked(c, blobs, "gaussian", "ignore")
        with torch.no_grad():
            mu, log_var = model.encode(torch.as_tensor(values))
        decoded = _inference.decode_mean(model, mu.numpy(), c.width)
        results.append(
            (
                mu.numpy(),  # the posterior, mean and variance
                log_var.numpy(),
                _inference.to_output(c, decoded, np.float64),  # the decoder's mean
                _inference.noise_variance(model, c),  # and variance, in data units
            )
        )
    for a, b in zip(*results, strict=True):
        assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_transform_during_partial_fit_answers_with_a_complete_model():
    # Another thread's transform used to meet the module in float32 mid-batch
    # ("mat1 and mat2 must have the same dtype"): it now reads the last model.
    first, *rest = list(batches(8, 400))
    vae = VAETransformer(2, **STREAM).partial_fit(first)
    errors, results = [], []
    done = threading.Event()

    def train():
        try:
            for batch in rest:
                vae.partial_fit(batch)
        finally:
            done.set()

    def serve():
        while not done.is_set():
            try:
                results.append(vae.transform(first))
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=train), threading.Thread(target=serve)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results and all(np.isfinite(r).all() for r in results)


def test_a_column_constant_so_far_that_starts_to_vary():
    # Its encoder weights never trained (the input was always 0): scaled by the
    # first spread it meets they threw the latent far out.
    rng = np.random.default_rng(0)
    first = np.column_stack([rng.normal(size=200), np.full(200, 5.0)])
    later = np.column_stack([rng.normal(size=200), rng.normal(5.0, 1e3, size=200)])
    vae = VAETransformer(1, **STREAM).partial_fit(first)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the drift warning
        vae.partial_fit(later).partial_fit(later)
    assert np.all(np.abs(vae.transform(later)) < 10)
    assert vae.scale_[1] == pytest.approx(
        np.concatenate([first, later, later])[:, 1].std()
    )


def test_a_stream_of_categories_only_saves_and_loads():
    # Adam keeps no state for the (unused) Gaussian variance of a table without
    # continuous columns: the saved moments say whose they are.
    table = pd.DataFrame({"c": list("abcab") * 20, "d": list("xyxyy") * 20})
    vae = VAETransformer(2, **STREAM).partial_fit(table).partial_fit(table)
    loaded = pickle.loads(pickle.dumps(vae))
    assert_array_equal(loaded.transform(table), vae.transform(table))
    assert_allclose(
        loaded.partial_fit(table).transform(table),
        vae.partial_fit(table).transform(table),
    )


@pytest.mark.parametrize("start", ["fit", "partial_fit"])
def test_a_batch_of_no_rows_changes_nothing(start):
    # A partition a filter left empty, in a loop over partitions or dask-ml's
    # Incremental: the model, its counts and its stream are as they were.
    table = make_table()
    first, second = table.iloc[:120], table.iloc[120:]
    vae = getattr(VAETransformer(2, **STREAM), start)(first)
    before = vae.transform(second)
    counts = (vae.n_samples_seen_, vae.n_iter_, len(vae.loss_curve_))
    assert vae.partial_fit(second.iloc[:0]) is vae
    assert_allclose(vae.transform(second), before, rtol=0, atol=0)
    assert (vae.n_samples_seen_, vae.n_iter_, len(vae.loss_curve_)) == counts
    with pytest.raises(ValueError, match="sample_weight has 3 entries"):
        vae.partial_fit(second.iloc[:0], sample_weight=np.ones(3))
    vae.partial_fit(second.iloc[:0], sample_weight=1.0)  # a scalar fits any batch
    # Rows all of weight 0 are left out, as rows of weight 0 in any batch.
    vae.partial_fit(second, sample_weight=np.zeros(len(second)))
    assert_allclose(vae.transform(second), before, rtol=0, atol=0)
    assert (vae.n_samples_seen_, vae.n_iter_, len(vae.loss_curve_)) == counts
    with pytest.raises(ValueError, match="Negative values"):
        vae.partial_fit(second, sample_weight=-np.ones(len(second)))
    vae.partial_fit(second)  # and the stream goes on
    assert vae.n_samples_seen_ == counts[0] + len(second)
    with pytest.raises(ValueError, match="0 sample"):  # a first batch needs rows
        VAETransformer(2, **STREAM).partial_fit(first.iloc[:0])


def test_a_verbose_stream_prints_a_line_a_call(capfd):
    first, second = list(batches(2))
    vae = VAETransformer(2, verbose=True, **STREAM).partial_fit(first)
    vae.partial_fit(second)
    lines = capfd.readouterr().err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "VAE partial_fit (n_iter_ 1)",
        "VAE partial_fit (n_iter_ 2)",
    ]
    assert f"{vae.loss_curve_[-1]:.4g}" in lines[-1]
