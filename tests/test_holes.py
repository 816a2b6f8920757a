"""Holes in generated rows: sample(missing=True)."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from skvae import VAETransformer

from .helpers import FAST, make_table, with_holes

RATES = np.array([0.05, 0.1, 0.5])  # share of `age` missing in classes a, b, c


def passengers(n=1500, seed=0):
    """A table whose holes depend on another column, as titanic's age on class."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 3, n)
    table = pd.DataFrame(
        {
            "cls": pd.Categorical(np.array(["a", "b", "c"])[cls]),
            "age": rng.normal(30 + 5 * cls, 8),
            "fare": np.exp(rng.normal(3 - 0.5 * cls, 0.5)),
        }
    )
    table.loc[rng.random(n) < RATES[cls], "age"] = np.nan
    return table


@pytest.fixture(scope="module")
def fitted():
    table = passengers()
    return table, VAETransformer(2, random_state=0).fit(table)


def test_holes_come_at_the_training_rate_and_with_the_other_columns(fitted):
    table, vae = fitted
    drawn = vae.sample(6000, random_state=0, missing=True)
    assert drawn["age"].isna().mean() == pytest.approx(
        table["age"].isna().mean(), abs=0.03
    )
    assert not drawn[["cls", "fare"]].isna().any().any()  # never missing in training
    by_class = drawn.groupby("cls", observed=True)["age"].apply(
        lambda a: a.isna().mean()
    )
    # In the data: 5%, 10%, 50%; without the latent point, 23% in each class.
    assert by_class["a"] < 0.12 and by_class["c"] > 0.35


def test_a_column_keeps_its_regression_only_where_it_explains_the_holes(fitted):
    table, vae = fitted
    age = list(vae.codec_.order).index(1)
    assert vae.hole_model_["pvalue"][age] < 0.01  # the holes depend on the class
    assert np.abs(vae.hole_model_["coef"][age]).max() > 0.1
    # The same rows, their ages missing at random: nothing to regress on.
    rng = np.random.default_rng(1)
    at_random = table.assign(age=table["age"].fillna(35.0))
    at_random.loc[rng.random(len(table)) < 0.2, "age"] = np.nan
    holes = VAETransformer(2, random_state=0).fit(at_random).hole_model_
    assert holes["pvalue"][age] == 1.0 and not holes["coef"][age].any()
    assert holes["intercept"][age] == pytest.approx(
        np.log(holes["rate"][age] / (1 - holes["rate"][age]))
    )
    assert holes["rate"][age] == pytest.approx(at_random["age"].isna().mean())


def test_log_prob_is_the_logistic_likelihood_of_the_holes():
    from skvae._holes import log_prob

    rng = np.random.default_rng(0)
    model = {"coef": rng.normal(size=(3, 2)), "intercept": rng.normal(size=3)}
    z = torch.as_tensor(rng.normal(size=(5, 4, 2)))  # (draws, rows, k)
    missing = torch.as_tensor(rng.random((4, 3)) < 0.5)  # (rows, columns)
    p = 1 / (1 + np.exp(-(z.numpy() @ model["coef"].T + model["intercept"])))
    expected = np.where(missing.numpy(), np.log(p), np.log1p(-p)).sum(axis=-1)
    assert_allclose(log_prob(model, z, missing).numpy(), expected, rtol=1e-12)


def test_a_hole_model_saved_before_the_test_loads_and_draws(fitted):
    _, vae = fitted
    state = vae.__getstate__()
    state["_holes"] = {k: v for k, v in state["_holes"].items() if k != "pvalue"}
    loaded = VAETransformer()
    loaded.__setstate__(state)
    assert "pvalue" not in loaded.hole_model_
    pd.testing.assert_frame_equal(
        loaded.sample(300, random_state=1, missing=True),
        vae.sample(300, random_state=1, missing=True),
    )


def test_the_values_drawn_do_not_depend_on_the_holes(fitted):
    _, vae = fitted
    complete = vae.sample(500, random_state=3)
    holed = vae.sample(500, random_state=3, missing=True)
    assert not complete.isna().any().any()  # the default: complete rows
    kept = holed["age"].notna()
    assert_array_equal(holed.loc[kept, "age"], complete.loc[kept, "age"])
    assert_array_equal(holed["fare"], complete["fare"])
    again = vae.sample(500, random_state=3, missing=True)
    pd.testing.assert_frame_equal(again, holed)


def test_holes_in_every_dtype_as_the_dtype_stores_them():
    table = with_holes(make_table(400), fraction=0.3)
    vae = VAETransformer(2, **FAST).fit(table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        drawn = vae.sample(2000, random_state=0, missing=True)
    assert drawn.dtypes.equals(table.dtypes)
    assert_allclose(drawn.isna().mean(), table.isna().mean(), atol=0.06)


def test_holes_in_arrays():
    X = np.random.default_rng(0).normal(size=(300, 4))
    X[::4, 1] = np.nan
    vae = VAETransformer(2, **FAST).fit(X)
    drawn = vae.sample(2000, random_state=0, missing=True)
    assert_allclose(np.isnan(drawn).mean(axis=0), [0, 0.25, 0, 0], atol=0.04)


def test_a_model_without_a_latent_space_draws_holes_at_the_rate():
    table = passengers(600)
    vae = VAETransformer(0, **FAST).fit(table)
    drawn = vae.sample(4000, random_state=0, missing=True)
    assert drawn["age"].isna().mean() == pytest.approx(
        table["age"].isna().mean(), abs=0.03
    )


def test_a_stream_pools_the_rates_of_its_batches():
    table = passengers(1200)
    vae = VAETransformer(2, **FAST)
    shuffled = table.sample(frac=1, random_state=0)
    for start in range(0, len(shuffled), 300):
        vae.partial_fit(shuffled.iloc[start : start + 300])
    # n_samples_seen_-weighted rates of the batches: the share over every row.
    assert vae._holes["rate"][list(vae.codec_.order).index(1)] == pytest.approx(
        table["age"].isna().mean(), rel=1e-12
    )
    drawn = vae.sample(4000, random_state=0, missing=True)
    assert drawn["age"].isna().mean() == pytest.approx(
        table["age"].isna().mean(), abs=0.04
    )


@pytest.mark.parametrize("how", ["pickle", "skops"])
def test_saved_models_draw_the_same_holes(fitted, how):
    _, vae = fitted
    if how == "pickle":
        loaded = pickle.loads(pickle.dumps(vae))
    else:
        sio = pytest.importorskip("skops.io")
        trusted = ["skvae._transformer.VAETransformer"]
        loaded = sio.loads(sio.dumps(vae), trusted=trusted)
    pd.testing.assert_frame_equal(
        loaded.sample(300, random_state=1, missing=True),
        vae.sample(300, random_state=1, missing=True),
    )


@pytest.mark.parametrize(
    ("key", "match"),
    [("rate", "shares between 0 and 1"), ("pvalue", "p-values between 0 and 1")],
)
def test_an_edited_hole_model_is_refused_on_load(fitted, key, match):
    _, vae = fitted
    state = vae.__getstate__()
    state["_holes"] = {**state["_holes"], key: state["_holes"][key] + 2.0}
    with pytest.raises(ValueError, match=rf"_holes\['{key}'\].*{match}"):
        VAETransformer().__setstate__(state)


def test_a_model_saved_before_holes_says_to_refit():
    from pathlib import Path

    saved = Path(__file__).parent / "saved" / "table.pkl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the version it was saved with
        vae = pickle.loads(saved.read_bytes())
    vae.sample(3, random_state=0)  # complete rows as before
    with pytest.raises(ValueError, match="fit it again"):
        vae.sample(3, random_state=0, missing=True)
