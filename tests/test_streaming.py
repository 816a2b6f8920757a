"""partial_fit: training on a stream of batches."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

import skvae._streaming as streaming
from skvae import VAETransformer

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


def test_later_batches_need_the_first_batchs_columns():
    table = make_table()
    vae = VAETransformer(2, **STREAM).partial_fit(table.iloc[:120])
    # Missing values and unseen categories, as in fit.
    vae.partial_fit(with_holes(table.iloc[120:]))
    unseen = table.iloc[:30].copy()
    unseen["obj"] = "maybe"
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
