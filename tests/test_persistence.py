"""Saving and loading: pickle, joblib and skops hold plain data, and load it back."""

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_array_equal
from pandas.testing import assert_frame_equal
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import skvae._persistence as persistence
from skvae import InconsistentVersionWarning, VAEImputer, VAETransformer

from .helpers import FAST, make_table, with_holes

skops_io = pytest.importorskip("skops.io")
from skops.io.exceptions import UntrustedTypesFoundException  # noqa: E402


@pytest.fixture(scope="module")
def table():
    return with_holes(make_table())


@pytest.fixture(scope="module")
def array():
    rng = np.random.default_rng(0)
    return rng.normal(size=(200, 3)) @ rng.normal(size=(3, 6))


@pytest.fixture(scope="module", params=["array", "table"])
def fitted(request, array, table):
    X = array if request.param == "array" else table
    return VAETransformer(2, **FAST).fit(X), X


def assert_same_model(restored, original, X):
    Z = original.transform(X)
    assert_array_equal(restored.transform(X), Z)
    assert_array_equal(restored.score_samples(X), original.score_samples(X))
    a, b = restored.inverse_transform(Z), original.inverse_transform(Z)
    s, t = restored.sample(5, random_state=0), original.sample(5, random_state=0)
    if isinstance(b, pd.DataFrame):
        assert_frame_equal(a, b)
        assert_frame_equal(s, t)
    else:
        assert_array_equal(a, b)
        assert_array_equal(s, t)


def _leaves(value, path="state"):
    """Every leaf of a saved state, with where it sits."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), path
            yield from _leaves(item, f"{path}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    elif isinstance(value, np.ndarray) and value.dtype == object:
        for i, item in enumerate(value.ravel()):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value


@pytest.mark.parametrize("trained_by", ["fit", "partial_fit"])
def test_the_saved_state_is_plain_data(fitted, trained_by):
    vae, X = fitted
    if trained_by == "partial_fit":  # adds the optimizer's and generator's state
        vae = VAETransformer(2, **FAST).partial_fit(X)
        assert "_stream" in vae.__getstate__()
    plain = (str, int, float, bool, type(None), np.ndarray)
    for path, leaf in _leaves(vae.__getstate__()):
        assert isinstance(leaf, plain), f"{path} is a {type(leaf).__name__}"
        if isinstance(leaf, np.ndarray):
            assert leaf.dtype.kind in "biuf", path


@pytest.mark.parametrize("how", ["pickle", "joblib", "skops"])
def test_round_trips_give_identical_results(fitted, tmp_path, how):
    vae, X = fitted
    path = tmp_path / "model"
    if how == "pickle":
        restored = pickle.loads(pickle.dumps(vae))
    elif how == "joblib":
        joblib.dump(vae, path)
        restored = joblib.load(path)
    else:
        skops_io.dump(vae, path)
        restored = skops_io.load(path, trusted=["skvae._transformer.VAETransformer"])
    assert_same_model(restored, vae, X)
    assert restored.get_params() == vae.get_params()


@pytest.mark.parametrize("kind", ["array", "table"])
def test_skops_trusts_only_skvae_types_in_a_pipeline(kind, array, table, tmp_path):
    if kind == "array":
        X, y = array, array[:, 0] > 0
    else:
        X, y = table.drop(columns="flag"), table["f64"].to_numpy() > 0
    pipe = Pipeline(
        [("vae", VAETransformer(2, **FAST)), ("clf", LogisticRegression())]
    ).fit(X, y)
    path = tmp_path / "pipe.skops"
    skops_io.dump(pipe, path)
    assert skops_io.get_untrusted_types(file=path) == [
        "skvae._transformer.VAETransformer"
    ]
    with pytest.raises(UntrustedTypesFoundException):
        skops_io.load(path)
    restored = skops_io.load(path, trusted=["skvae._transformer.VAETransformer"])
    assert_array_equal(restored.predict_proba(X), pipe.predict_proba(X))
    assert_same_model(restored["vae"], pipe["vae"], X)


def test_skops_round_trip_of_the_imputer(table, tmp_path):
    imputer = VAEImputer(2, add_indicator=True, **FAST).fit(table)
    path = tmp_path / "imputer.skops"
    skops_io.dump(imputer, path)
    untrusted = skops_io.get_untrusted_types(file=path)
    assert untrusted == [
        "skvae._imputer.VAEImputer",
        "skvae._transformer.VAETransformer",
    ]
    restored = skops_io.load(path, trusted=untrusted)
    assert_frame_equal(restored.transform(table), imputer.transform(table))


def test_saved_size_does_not_grow_with_the_training_rows(array):
    rng = np.random.default_rng(1)
    big = np.vstack([array] * 10) + 0.01 * rng.normal(size=(2000, 6))
    kwargs = dict(FAST, early_stopping=False, n_iter_no_change=100)
    small_size = len(pickle.dumps(VAETransformer(2, **kwargs).fit(array)))
    big_size = len(pickle.dumps(VAETransformer(2, **kwargs).fit(big)))
    assert abs(big_size - small_size) < 200  # bytes: the same parameters
    assert big_size < big.nbytes / 5


def test_loading_draws_nothing_from_global_random_state(fitted):
    vae, _ = fitted
    data = pickle.dumps(vae)
    state = torch.get_rng_state()
    pickle.loads(data)
    assert torch.equal(torch.get_rng_state(), state)


def test_another_skvae_version_warns(fitted, monkeypatch):
    vae, X = fitted
    monkeypatch.setattr(persistence, "__version__", "0.0.1")
    data = pickle.dumps(vae)
    monkeypatch.undo()
    with pytest.warns(InconsistentVersionWarning, match=r"saved with skvae 0\.0\.1"):
        restored = pickle.loads(data)
    assert_array_equal(restored.transform(X), vae.transform(X))


def test_a_newer_state_format_is_a_clear_error(fitted, monkeypatch):
    vae, _ = fitted
    monkeypatch.setattr(persistence, "STATE_FORMAT", 99)
    data = pickle.dumps(vae)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"state format 99.*reads formats up to 2"):
        pickle.loads(data)


def test_a_damaged_state_is_a_clear_error(fitted):
    vae, _ = fitted
    state = vae.__getstate__()
    weights = state["module_"]["weights"]
    weights.pop(next(iter(weights)))
    restored = VAETransformer.__new__(VAETransformer)
    with pytest.raises(ValueError, match="could not be rebuilt"):
        restored.__setstate__(state)


def test_an_unfitted_estimator_round_trips():
    vae = VAETransformer(3, device=torch.device("cpu"))
    restored = pickle.loads(pickle.dumps(vae))
    assert restored.get_params()["n_components"] == 3
    assert restored.device == torch.device("cpu")  # the parameter as it was given
    assert isinstance(restored.device, torch.device)
