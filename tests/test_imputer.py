"""VAEImputer: holes filled, everything else kept (index, columns, dtypes, values)."""

import pickle

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from pandas.testing import assert_frame_equal, assert_series_equal
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skvae import VAEImputer, VAETransformer

from .helpers import FAST, make_table, with_holes


@pytest.fixture(scope="module")
def table():
    return make_table()


@pytest.fixture(scope="module")
def holed(table):
    return with_holes(table)


@pytest.fixture(scope="module")
def fitted(holed):
    return VAEImputer(2, **FAST).fit(holed)


def assert_observed_unchanged(filled, holed):
    for column in holed.columns:
        seen = holed[column].notna().to_numpy()
        got = filled[column][seen].astype(object).to_numpy()
        assert_array_equal(got, holed[column][seen].astype(object).to_numpy())


# --- the index bug (issue: fillna aligned decoded rows on the wrong labels) ---------


@pytest.mark.parametrize(
    "index",
    [pd.RangeIndex(200, 200 + 240), pd.Index([f"id{i}" for i in range(240)])],
    ids=["shifted", "strings"],
)
def test_inverse_transform_keeps_the_index_of_a_dataframe(holed, index):
    df = holed.set_axis(index)
    vae = VAETransformer(2, **FAST).set_output(transform="pandas").fit(df)
    Z = vae.transform(df)
    assert Z.index.equals(index)
    decoded = vae.inverse_transform(Z)
    assert decoded.index.equals(index)
    # The fillna recipe now fills each hole from its own row.
    filled = df.fillna(decoded)
    assert not filled.isna().any().any()
    by_position = vae.inverse_transform(Z.to_numpy())
    assert_frame_equal(decoded.reset_index(drop=True), by_position)
    for column in ("f64", "cat"):
        hole = df[column].isna().to_numpy()
        assert_array_equal(
            filled[column][hole].astype(object),
            by_position[column][hole].astype(object),
        )


@pytest.mark.parametrize(
    "index",
    [pd.RangeIndex(200, 200 + 240), pd.Index([f"id{i}" for i in range(240)])],
    ids=["shifted", "strings"],
)
def test_imputer_keeps_index_columns_and_observed_values(fitted, holed, index):
    df = holed.set_axis(index)
    filled = fitted.transform(df)
    assert filled.index.equals(index)
    assert list(filled.columns) == list(df.columns)
    assert not filled.isna().any().any()
    assert_observed_unchanged(filled, df)
    # The same rows give the same values whatever their labels.
    assert_frame_equal(
        filled.reset_index(drop=True), fitted.transform(holed).reset_index(drop=True)
    )


# --- dtypes ------------------------------------------------------------------------


def test_every_dtype_comes_back(fitted, holed):
    filled = fitted.transform(holed)
    assert filled.dtypes.equals(holed.dtypes)
    assert_observed_unchanged(filled, holed)
    # Filled categories are levels of the column.
    assert set(filled["cat"]) <= {"lo", "mid", "hi"}
    assert set(filled["obj"]) <= {"yes", "no"}


def test_training_dtypes_return_when_a_batch_has_holes_the_fit_had_not(table, holed):
    """Fitted on complete columns: holes make int64 float and bool object in pandas.

    The filled batch goes back to the training dtypes, since its values fit them.
    """
    imputer = VAEImputer(2, **FAST).fit(table)
    assert holed["i64"].dtype == np.float64 and holed["flag"].dtype == object
    filled = imputer.transform(holed)
    assert filled.dtypes.equals(table.dtypes)
    assert_observed_unchanged(filled, holed)


def test_a_batch_with_a_column_all_missing(fitted, holed):
    """An all-missing column arrives as float NaN or object None: still typed."""
    batch = holed.iloc[:7].copy()
    batch["cat"] = np.nan  # float64 now
    batch["text"] = None
    filled = fitted.transform(batch)
    assert filled["cat"].dtype == holed["cat"].dtype
    assert filled["text"].dtype == holed["text"].dtype
    assert not filled.isna().any().any()
    one = fitted.transform(batch.iloc[[3]])
    assert_frame_equal(one, filled.iloc[[3]])


def test_unseen_categories_are_kept_as_observed_values(fitted, holed):
    batch = holed.iloc[:6].copy()
    batch["cat"] = batch["cat"].astype(object)
    batch.loc[batch.index[0], "cat"] = "new"
    filled = fitted.transform(batch)
    assert filled.loc[batch.index[0], "cat"] == "new"
    assert not filled.isna().any().any()
    strict = clone(fitted).set_params(handle_unknown="error").fit(holed)
    with pytest.raises(ValueError, match=r"'cat'.*unseen.*\['new'\]"):
        strict.transform(batch)


def test_category_order_of_a_batch_does_not_matter(fitted, holed):
    batch = holed.iloc[:40].copy()
    shuffled = batch.copy()
    shuffled["cat"] = batch["cat"].cat.reorder_categories(["hi", "lo", "mid"])
    a = fitted.transform(batch)
    b = fitted.transform(shuffled)
    assert_array_equal(a["f64"], b["f64"])
    assert_array_equal(a["cat"].astype(str), b["cat"].astype(str))


def test_arrays_in_arrays_out():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3)) @ rng.normal(size=(3, 5))
    X_holed = X.copy()
    X_holed[rng.random(X.shape) < 0.2] = np.nan
    imputer = VAEImputer(2, **FAST).fit(X_holed)
    for dtype in (np.float64, np.float32):
        filled = imputer.transform(X_holed.astype(dtype))
        assert filled.dtype == dtype
        seen = ~np.isnan(X_holed)
        assert_array_equal(filled[seen], X_holed.astype(dtype)[seen])
        assert np.isfinite(filled).all()
    # Fitted on an array, a DataFrame in still gives an array out.
    assert isinstance(imputer.transform(pd.DataFrame(X_holed)), np.ndarray)
    # Rows without a hole come back as they are, in a copy.
    complete = X[:5].copy()
    out = imputer.transform(complete)
    assert_array_equal(out, complete)
    assert out is not complete


def test_object_arrays_with_categorical_columns():
    rng = np.random.default_rng(0)
    t = rng.normal(size=120)
    X = np.empty((120, 3), dtype=object)
    X[:, 0] = t + 0.1 * rng.normal(size=120)
    X[:, 1] = 2 * t
    X[:, 2] = np.where(t > 0, "up", "down")
    X[::7, 0] = np.nan
    X[3::9, 2] = None
    imputer = VAEImputer(1, categorical_features=[2], **FAST).fit(X)
    filled = imputer.transform(X)
    assert filled.dtype == object and filled.shape == X.shape
    assert not pd.isna(filled).any()
    assert set(filled[:, 2]) == {"up", "down"}


# --- quality -----------------------------------------------------------------------


def nonlinear_table(n=800, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(-2, 2, size=(n, 1))
    numeric = np.hstack([t, t**2, np.sin(2 * t), np.cos(t), -t]) + 0.05 * rng.normal(
        size=(n, 5)
    )
    df = pd.DataFrame(numeric, columns=[f"x{i}" for i in range(5)])
    df["sign"] = pd.Categorical(np.where(t[:, 0] > 0, "pos", "neg"))
    holes = rng.random(df.shape) < 0.3
    return df, df.mask(holes), holes


def test_imputations_beat_the_column_mean_and_mode():
    full, holed, holes = nonlinear_table()
    imputer = VAEImputer(
        2, hidden_layer_sizes=(64, 32), max_iter=150, random_state=0
    ).fit(holed)
    filled = imputer.transform(holed)
    numeric = full.columns[:5]
    gap = holes[:, :5]
    truth = full[numeric].to_numpy()[gap]
    rmse = np.sqrt(np.mean((filled[numeric].to_numpy()[gap] - truth) ** 2))
    mean = holed[numeric].mean().to_numpy()[np.nonzero(gap)[1]]
    assert rmse < 0.5 * np.sqrt(np.mean((mean - truth) ** 2))
    cat_gap = holes[:, 5]
    accuracy = (filled["sign"][cat_gap] == full["sign"][cat_gap]).mean()
    assert accuracy > 0.85  # the mode scores about 0.5


def test_a_row_does_not_depend_on_the_rows_around_it(fitted, holed):
    full = fitted.transform(holed)
    for rows in ([0], [5, 2, 9], list(range(100, 140))):
        part = fitted.transform(holed.iloc[rows])
        assert_frame_equal(part, full.iloc[rows])


# --- multiple imputation -----------------------------------------------------------


def test_sample_posterior_draws_are_reproducible_and_vary():
    _, holed, holes = nonlinear_table(n=300)
    kwargs = dict(FAST, max_iter=30)
    draws = [
        VAEImputer(2, sample_posterior=True, **kwargs).fit(holed).transform(holed)
        for _ in range(2)
    ]
    assert_frame_equal(draws[0], draws[1])
    imputer = VAEImputer(2, sample_posterior=True, **kwargs).fit(holed)
    assert_frame_equal(imputer.transform(holed), imputer.transform(holed))
    other = clone(imputer).set_params(random_state=1).fit(holed).transform(holed)
    gap = holes[:, 0]
    assert not np.allclose(other["x0"][gap], draws[0]["x0"][gap])
    assert_observed_unchanged(other, holed)
    # Draws spread around the conditional mean; the mean itself is one value.
    mean = VAEImputer(2, **kwargs).fit(holed).transform(holed)
    spread = np.std(draws[0]["x0"][gap] - mean["x0"][gap])
    assert spread > 0.01
    assert not draws[0].isna().any().any()


# --- indicator, scikit-learn integration --------------------------------------------


def test_add_indicator_marks_features_missing_at_fit(table, holed):
    partly = holed.copy()
    partly["f64"] = table["f64"]  # no holes in this column at fit
    imputer = VAEImputer(2, add_indicator=True, **FAST).fit(partly)
    names = imputer.get_feature_names_out()
    flagged = [c for c in partly.columns if c != "f64"]
    assert list(names) == list(partly.columns) + [
        f"missingindicator_{c}" for c in flagged
    ]
    out = imputer.transform(partly)
    assert list(out.columns) == list(names)
    for c in flagged:
        assert_array_equal(out[f"missingindicator_{c}"], partly[c].isna())
    assert_frame_equal(
        out[list(partly.columns)],
        imputer.set_params(add_indicator=False).fit(partly).transform(partly),
    )


def test_add_indicator_on_arrays():
    X = np.arange(40, dtype=float).reshape(20, 2)
    X[::4, 1] = np.nan
    out = VAEImputer(1, add_indicator=True, **FAST).fit_transform(X)
    assert out.shape == (20, 3)
    assert_array_equal(out[:, 2], np.isnan(X[:, 1]))


def test_pipeline_grid_search_and_pickle(table, holed):
    y = table["f64"].to_numpy() > 0
    # Category columns go on to the classifier's native categorical support.
    X = holed[["f32", "i64", "cat", "nint"]]
    pipe = Pipeline(
        [
            ("impute", VAEImputer(**FAST)),
            ("clf", HistGradientBoostingClassifier(max_iter=20, random_state=0)),
        ]
    )
    search = GridSearchCV(pipe, {"impute__n_components": [1, 2]}, cv=2).fit(X, y)
    assert search.best_params_["impute__n_components"] in (1, 2)
    assert search.score(X, y) > 0.7
    # Without labels: the imputer's own score, the ELBO of the observed entries.
    label_free = GridSearchCV(VAEImputer(**FAST), {"n_components": [1, 2]}, cv=2)
    assert np.isfinite(label_free.fit(X).best_score_)
    fitted = search.best_estimator_["impute"]
    again = pickle.loads(pickle.dumps(fitted))
    assert_frame_equal(again.transform(X), fitted.transform(X))


def test_set_output_pandas_on_arrays():
    X = np.arange(40, dtype=float).reshape(20, 2)
    X[::3, 0] = np.nan
    imputer = VAEImputer(1, **FAST).set_output(transform="pandas")
    out = imputer.fit_transform(X)
    assert list(out.columns) == ["x0", "x1"]
    assert_series_equal(out["x1"], pd.Series(X[:, 1], name="x1"))


def test_parameters_are_the_transformers(fitted):
    """Every VAETransformer parameter but the label weight is an imputer's too."""
    shared = VAETransformer().get_params()
    del shared["target_weight"]  # an imputer trains without labels
    params = fitted.get_params()
    assert set(shared) < set(params)
    assert "target_weight" not in params
    vae_params = fitted.vae_.get_params()
    assert vae_params.pop("target_weight") == 0
    assert vae_params == {k: params[k] for k in shared}
    # n_components=None: half the columns, between 1 and 10.
    for n_columns, expected in [(1, 1), (4, 2), (9, 4), (30, 10)]:
        X = np.random.default_rng(0).normal(size=(40, n_columns))
        imputer = VAEImputer(**FAST).fit(X)
        assert imputer.vae_.n_components == expected
    assert fitted.n_iter_ == fitted.vae_.n_iter_
    doc = VAEImputer.__doc__
    assert "hidden_layer_sizes : int or array-like" in doc
    for placeholder in ("{model_parameters}", "{training_parameters}", "{n_iter"):
        assert placeholder not in doc


def test_the_imputer_waits_longer_before_it_stops():
    """Patience 30 for the imputer (noisy held-out loss with holes), 10 otherwise.

    Each estimator's docs state its own default, and the imputer passes its
    own to the model underneath.
    """
    assert VAEImputer().n_iter_no_change == 30
    assert VAETransformer().n_iter_no_change == 10
    assert "n_iter_no_change : int, default=30" in VAEImputer.__doc__
    assert "n_iter_no_change : int, default=10" in VAETransformer.__doc__
    X = np.random.default_rng(0).normal(size=(40, 3))
    X[::4, 1] = np.nan
    imputer = VAEImputer(1, max_iter=2, random_state=0).fit(X)
    assert imputer.vae_.n_iter_no_change == 30


def test_a_failed_refit_keeps_the_previous_imputer(monkeypatch):
    from skvae import _training

    table = with_holes(make_table(80))
    imputer = VAEImputer(2, **FAST).fit(table)
    filled = imputer.transform(table)

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_training, "train_epoch", broken)
    with pytest.raises(KeyboardInterrupt):
        imputer.fit(table.iloc[:, :4])
    monkeypatch.undo()
    assert imputer.n_features_in_ == table.shape[1]
    assert_frame_equal(imputer.transform(table), filled)


def _few_numbers(n=400, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n)
    table = pd.DataFrame(
        {
            "x": t + 0.3 * rng.normal(size=n),
            "frontal": (t + 0.5 * rng.normal(size=n) > 0).astype(np.int64),
            "stars": np.clip(np.rint(2 + t), 1, 3).astype(np.int64),  # 3 levels
        }
    )
    holes = rng.random((n, 3)) < 0.2
    holes[:, 0] = False
    return table.mask(holes), holes  # int columns with NaN: float64


def test_numbers_held_as_levels_are_filled_with_their_mean():
    # A 0/1 or 1-2-3 column of a DataFrame is modelled as levels
    # (categorical_features="from_dtype"); a float column's fill is still the
    # mean of its numbers: the probability of 1, not the likelier of 0 and 1.
    holed, holes = _few_numbers()
    imputer = VAEImputer(1, **FAST).fit(holed)
    codec = imputer.vae_.codec_
    assert [c.numeric_levels for c in codec.columns] == [False, True, True]
    filled = imputer.transform(holed)
    frontal = filled["frontal"][holes[:, 1]].to_numpy()
    assert np.all((frontal > 0) & (frontal < 1))
    stars = filled["stars"][holes[:, 2]].to_numpy()
    assert np.all((stars > 1) & (stars < 3)) and not np.all(stars == np.round(stars))
    # column_values=True: values the column holds, the likelier level (a
    # NumPy bool, as a grid search over an array passes it, alike).
    for flag in (True, np.True_):
        levels = imputer.set_params(column_values=flag).transform(holed)
        assert_array_equal(levels["frontal"][holes[:, 1]], np.round(frontal))
        assert set(levels["stars"][holes[:, 2]]) <= {1.0, 2.0, 3.0}
    assert_frame_equal(
        imputer.set_params(column_values=np.False_).transform(holed), filled
    )
    # An integer dtype keeps its values, and its dtype, by default.
    nullable = holed.astype({"frontal": "Int64", "stars": "Int64"})
    kept = VAEImputer(1, **FAST).fit(nullable).transform(nullable)
    assert kept["frontal"].dtype == kept["stars"].dtype == "Int64"
    assert set(kept["stars"][holes[:, 2]]) <= {1, 2, 3}
    # Levels the user asked for are levels: the likeliest one fills a hole.
    asked = VAEImputer(1, families={"stars": "categorical"}, **FAST).fit(holed)
    assert [c.numeric_levels for c in asked.vae_.codec_.columns] == [
        False,
        True,
        False,
    ]
    assert set(asked.transform(holed)["stars"][holes[:, 2]]) <= {1.0, 2.0, 3.0}
    # Saved and loaded with the model.
    loaded = pickle.loads(pickle.dumps(imputer.set_params(column_values="auto")))
    assert_frame_equal(loaded.transform(holed), filled)


def mnar_table(n=1500, seed=0):
    """Three measures of one trait and a level; high values go missing more often."""
    rng = np.random.default_rng(seed)
    trait = rng.normal(size=n)
    table = pd.DataFrame(
        {f"x{i}": trait + 0.5 * rng.normal(size=n) for i in (1, 2, 3)}
        | {"high": pd.Categorical(trait + 0.5 * rng.normal(size=n) > 0.5)}
    )
    holed = table.copy()
    for column in ("x1", "high"):
        values = table[column]
        high = values > values.median() if column == "x1" else values.astype(bool)
        p = np.where(high, 0.6, 0.05)  # 60% of the high entries, 5% of the others
        holed.loc[rng.random(n) < p, column] = np.nan
    return table, holed


def test_holes_that_depend_on_the_values_move_the_fills_their_way():
    table, holed = mnar_table()
    imputer = VAEImputer(1, hidden_layer_sizes=(32,), random_state=0).fit(holed)
    holes = imputer.vae_.hole_model_
    assert (holes["pvalue"][holes["rate"] > 0] < 0.01).all()
    # The same model, told nothing of which entries are missing: a hole model
    # saved before the regressions were tested is not conditioned on.
    blind = pickle.loads(pickle.dumps(imputer))
    del blind.vae_.hole_model_["pvalue"]
    hidden = holed["x1"].isna()
    truth = table.loc[hidden, "x1"]
    aware, unaware = imputer.transform(holed), blind.transform(holed)
    # The hidden values are high, and the fills of both fall short of them;
    # those that read the holes less so. Over four tables and two seeds the
    # bias moved by 0.05-0.06, the RMSE by 0.03-0.04, the accuracy by 0.02-0.05.
    fills = [f.loc[hidden, "x1"] for f in (aware, unaware)]
    bias = [f.mean() - truth.mean() for f in fills]
    assert bias[1] < -0.2 and bias[0] > bias[1] + 0.03
    rmse = [np.sqrt(((f - truth) ** 2).mean()) for f in fills]
    assert rmse[0] < rmse[1] - 0.01
    hidden = holed["high"].isna()
    right = [
        f.loc[hidden, "high"] == table.loc[hidden, "high"] for f in (aware, unaware)
    ]
    assert right[0].mean() > right[1].mean() + 0.01


def test_a_hole_model_without_regressions_leaves_the_fills_alone():
    # Holes that the latent point does not explain: each column's missing rate,
    # the same at every draw, moves no weight.
    _, holed = mnar_table(400)
    imputer = VAEImputer(1, **FAST).fit(holed)
    holes = imputer.vae_.hole_model_
    holes["coef"][:] = 0.0
    holes["pvalue"][:] = 1.0
    blind = pickle.loads(pickle.dumps(imputer))
    del blind.vae_.hole_model_["pvalue"]
    assert_frame_equal(imputer.transform(holed), blind.transform(holed), rtol=1e-12)
