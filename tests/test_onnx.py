"""ONNX export, checked by running the graphs with onnxruntime."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skvae import VAETransformer, register_onnx_converter, to_onnx

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

ONNX_FIT = dict(max_iter=15, hidden_layer_sizes=(32, 16), random_state=0)
NO_ZIPMAP = {LogisticRegression: {"zipmap": False}}


def run(onx, feeds):
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)


@pytest.fixture(scope="module")
def numeric():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(400, 2))
    X = np.hstack([t, np.sin(t), t[:, :1] * t[:, 1:]]) @ rng.normal(size=(5, 6))
    X = (X + 0.1 * rng.normal(size=X.shape)).astype(np.float32)
    y = (t[:, 0] + t[:, 1] > 0).astype(int)
    return X[:300], X[300:], y[:300]


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_transform_matches_on_held_out_rows_with_holes(numeric, likelihood):
    X_train, X_test, _ = numeric
    if likelihood == "bernoulli":
        X_train, X_test = 1 / (1 + np.exp(-X_train)), 1 / (1 + np.exp(-X_test))
    X_test = X_test.copy()
    X_test[::5, 2] = np.nan
    vae = VAETransformer(3, likelihood=likelihood, **ONNX_FIT).fit(X_train)
    onx = to_onnx(vae, X_train[:5])
    (Z,) = run(onx, {"X": X_test})
    assert Z.dtype == np.float32
    assert_allclose(Z, vae.transform(X_test), atol=1e-5, rtol=0)


def test_a_whole_pipeline_gives_the_same_probabilities(numeric):
    X_train, X_test, y_train = numeric
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("vae", VAETransformer(2, **ONNX_FIT)),
            ("clf", LogisticRegression()),
        ]
    ).fit(X_train, y_train)
    onx = to_onnx(pipe, X_train[:5], options=NO_ZIPMAP)
    labels, probabilities = run(onx, {"X": X_test})
    assert_allclose(probabilities, pipe.predict_proba(X_test), atol=1e-5, rtol=0)
    assert (labels == pipe.predict(X_test)).mean() > 0.99


def mixed(n=400, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "size": (t + 0.2 * rng.normal(size=n)).astype(np.float32),
            "weight": (2 * t + 0.2 * rng.normal(size=n)).astype(np.float32),
            "colour": pd.Series(
                np.where(t > 0.5, "red", np.where(t < -0.5, "blue", "green"))
            ),
            "shiny": pd.Series(np.where(t + rng.normal(size=n) > 0, "yes", "no")),
        }
    )
    return df, (t > 0).astype(int)


def feeds_of(df):
    """One (N, 1) input per column; a missing category as an empty string."""
    feeds = {}
    for column in df.columns:
        values = df[column]
        if not pd.api.types.is_numeric_dtype(values):
            feeds[column] = values.fillna("").to_numpy(dtype=str).reshape(-1, 1)
        else:
            feeds[column] = values.to_numpy(np.float32).reshape(-1, 1)
    return feeds


def test_dataframes_with_categorical_columns_get_one_input_per_column():
    df, y = mixed()
    train, test = df.iloc[:300], df.iloc[300:].copy()
    test.loc[test.index[::4], "colour"] = None
    test.loc[test.index[1::4], "size"] = np.nan
    test.loc[test.index[2], "shiny"] = "unseen"
    pipe = Pipeline(
        [("vae", VAETransformer(2, **ONNX_FIT)), ("clf", LogisticRegression())]
    ).fit(train, y[:300])
    onx = to_onnx(pipe, train.iloc[:5], options=NO_ZIPMAP)
    assert [i.name for i in onx.graph.input] == list(df.columns)
    _, probabilities = run(onx, feeds_of(test))
    assert_allclose(probabilities, pipe.predict_proba(test), atol=1e-5, rtol=0)
    encoder = to_onnx(pipe["vae"], train.iloc[:5])
    (Z,) = run(encoder, feeds_of(test))
    assert_allclose(Z, pipe["vae"].transform(test), atol=1e-5, rtol=0)


def test_pandas_nullable_columns_become_float_inputs():
    # Int64, boolean and Float64 columns (each with holes), which fit accepts:
    # skl2onnx refuses their dtypes, so they become float64 inputs, NaN missing.
    rng = np.random.default_rng(1)
    n = 300
    holes = rng.random((n, 3)) < 0.15
    df = pd.DataFrame(
        {
            "count": pd.array(rng.poisson(3, n), dtype="Int64"),
            "flag": pd.array(rng.random(n) < 0.4, dtype="boolean"),
            "score": pd.array(rng.normal(size=n), dtype="Float64"),
        }
    ).mask(holes)
    df["small"] = pd.array(rng.poisson(1, n), dtype="UInt8")
    df["single"] = pd.Series(rng.normal(size=n), dtype="float32[pyarrow]")
    vae = VAETransformer(2, **ONNX_FIT).fit(df)
    onx = to_onnx(vae, df.iloc[:5])
    double = 11  # ONNX's element type; one float type for all, as Float64 is
    types = [i.type.tensor_type.elem_type for i in onx.graph.input]
    assert types == [double] * 5
    feeds = {c: df[c].astype(float).to_numpy().reshape(-1, 1) for c in df}
    (Z,) = run(onx, feeds)
    assert_allclose(Z, vae.transform(df), atol=1e-5, rtol=0)


@pytest.mark.parametrize("single", [False, True])
def test_numbers_and_flags_are_float_inputs_that_carry_holes(single):
    # NumPy integers and booleans, a categorical column of integer levels and
    # an object column of flags (a bool column with holes) are float inputs in
    # the frame's float type: a service feeds every such column as floats,
    # NaN where a value is missing, which int64 and bool inputs cannot carry.
    rng = np.random.default_rng(3)
    n = 300
    t = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": (t + 0.2 * rng.normal(size=n)).astype(
                np.float32 if single else np.float64
            ),
            "age": np.rint(40 + 10 * t).astype(np.int64),
            "member": t + rng.normal(size=n) > 0,
            "small": (rng.random(n) < 0.3).astype(np.uint8) + 2 * (t > 1),
            "level": pd.Categorical(np.where(t > 0, 2, 1)),
            "active": pd.Series(t > 0.3, dtype=object).mask(rng.random(n) < 0.1),
        }
    )
    vae = VAETransformer(2, **ONNX_FIT).fit(df)
    onx = to_onnx(vae, df.iloc[:5])
    element = 1 if single else 11  # float, double
    assert [i.type.tensor_type.elem_type for i in onx.graph.input] == [element] * 6
    test = df.astype({"age": float, "member": object, "small": float}).copy()
    test.iloc[::7, 1] = np.nan
    test.iloc[1::7, 2] = None
    test.iloc[2::7, 3] = np.nan
    test.iloc[3::7, 4] = np.nan
    dtype = np.float32 if single else np.float64
    feeds = {c: test[[c]].astype(float).to_numpy(dtype) for c in test.columns}
    (Z,) = run(onx, feeds)
    assert np.isfinite(Z).all()
    assert_allclose(Z, vae.transform(test), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "floats",
    [
        {"a": "Float32"},
        {"a": "float[pyarrow]"},
        {"a": np.float32, "b": np.float64},
        {"a": "Float32", "b": np.float32},
    ],
    ids=["nullable-float32", "pyarrow-float32", "float32-and-float64", "all-float32"],
)
def test_a_pipeline_of_any_float_columns_exports_in_one_float_type(floats):
    # skl2onnx builds the classifier for the latent's float type: inputs of
    # two float types (a float32 column beside a float64 one, or beside numbers
    # typed float64) made a graph that onnxruntime refused to load.
    rng = np.random.default_rng(4)
    n = 200
    df = pd.DataFrame({"i": rng.integers(0, 5, n), "flag": rng.random(n) < 0.5})
    for name, dtype in floats.items():
        df[name] = pd.Series(rng.normal(size=n)).astype(dtype)
    y = (df["a"].astype(float) + df["i"] > 2).astype(int).to_numpy()
    pipe = Pipeline(
        [("vae", VAETransformer(2, **ONNX_FIT)), ("clf", LogisticRegression())]
    ).fit(df, y)
    onx = to_onnx(pipe, df.iloc[:5], options=NO_ZIPMAP)
    single = all(
        str(d) in ("float32", "Float32", "float[pyarrow]") for d in df.dtypes[2:]
    )
    element = 1 if single else 11
    assert {i.type.tensor_type.elem_type for i in onx.graph.input} == {element}
    dtype = np.float32 if single else np.float64
    feeds = {c: df[[c]].astype(float).to_numpy(dtype) for c in df.columns}
    _, probabilities = run(onx, feeds)
    assert_allclose(probabilities, pipe.predict_proba(df), atol=1e-5, rtol=0)


def test_integer_levels_float32_cannot_hold_are_an_export_error():
    # float32 holds every integer up to 2**24 only: IDs beyond it would match
    # the wrong level or none in a float32 graph. float64 inputs hold them.
    rng = np.random.default_rng(5)
    df = pd.DataFrame(
        {
            "a": rng.normal(size=120).astype(np.float32),
            "store": rng.choice([16_777_217, 16_777_218, 16_777_219], 120),
        }
    )
    vae = VAETransformer(2, categorical_features=["store"], **ONNX_FIT).fit(df)
    with pytest.raises(ValueError, match=r"'store' has integer levels beyond 2\*\*24"):
        to_onnx(vae, df.iloc[:5])
    wide = df.astype({"a": np.float64})
    (Z,) = run(
        to_onnx(vae, wide.iloc[:5]), {c: wide[[c]].to_numpy(float) for c in wide}
    )
    assert_allclose(Z, vae.transform(df), atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", ["category", "string", "str"])
def test_text_columns_are_string_inputs_whatever_their_first_value(dtype):
    # skl2onnx types a column as strings from its first value: a missing one
    # made a categorical column an integer input and a string column an error.
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["a", "b"], 200)})
    df["c"] = df["c"].astype(dtype).mask(df.index == 0)
    vae = VAETransformer(2, **ONNX_FIT).fit(df)
    onx = to_onnx(vae, df.iloc[:5])
    assert onx.graph.input[1].type.tensor_type.elem_type == 8  # string
    text = df["c"].astype(object).where(df["c"].notna(), "")
    feeds = {"x": df[["x"]].to_numpy(), "c": text.to_numpy(dtype=object)[:, None]}
    (Z,) = run(onx, feeds)
    assert_allclose(Z, vae.transform(df), atol=1e-5, rtol=0)
    numbered = df.set_axis([0, 1], axis=1)
    numbered_vae = VAETransformer(2, **ONNX_FIT).fit(numbered)
    with pytest.raises(TypeError, match=r"must be strings; got \[0, 1\]"):
        to_onnx(numbered_vae, numbered.iloc[:5])


def test_inside_a_column_transformer(numeric):
    X_train, X_test, y_train = numeric
    columns = ColumnTransformer(
        [
            ("vae", VAETransformer(2, **ONNX_FIT), [0, 1, 2, 3]),
            ("rest", "passthrough", [4, 5]),
        ]
    )
    pipe = Pipeline([("features", columns), ("clf", LogisticRegression())])
    pipe.fit(X_train, y_train)
    onx = to_onnx(pipe, X_train[:5], options=NO_ZIPMAP)
    _, probabilities = run(onx, {"X": X_test})
    assert_allclose(probabilities, pipe.predict_proba(X_test), atol=1e-5, rtol=0)


def test_the_decoder_graph_matches_inverse_transform(numeric):
    X_train, _, _ = numeric
    frame = pd.DataFrame(X_train, columns=[f"c{i}" for i in range(6)])
    frame["count"] = np.rint(3 + X_train[:, 0]).astype(np.int64)
    vae = VAETransformer(3, families={"count": "discrete"}, **ONNX_FIT).fit(frame)
    Z = vae.transform(frame.iloc[:50]).astype(np.float32)
    onx = to_onnx(vae, decoder=True)
    (decoded,) = run(onx, {"Z": Z})
    expected = vae.inverse_transform(Z).to_numpy(np.float64)
    assert_allclose(decoded, expected, atol=1e-4, rtol=1e-5)


def test_the_decoder_graph_gives_the_mean_at_point_masses(numeric):
    # Censored columns' means count their masses (GaussianLikelihood.mean);
    # the graph computes them with Erf.
    X_train, _, _ = numeric
    frame = pd.DataFrame(X_train, columns=[f"c{i}" for i in range(6)])
    frame["spend"] = np.maximum(frame["c0"], 0.0)  # half the rows at 0
    frame["count"] = np.clip(np.rint(3 + 2 * X_train[:, 1]), 0, 6).astype(np.int64)
    vae = VAETransformer(3, **ONNX_FIT).fit(frame)
    assert vae.column_likelihoods_[-2:].tolist() == ["point_mass", "discrete"]
    Z = vae.transform(frame.iloc[:50]).astype(np.float32)
    (decoded,) = run(to_onnx(vae, decoder=True), {"Z": Z})
    expected = vae.inverse_transform(Z).to_numpy(np.float64)
    assert_allclose(decoded, expected, atol=1e-4, rtol=1e-5)
    assert (expected[:, -2] > 0).all()  # a mean, not the clipped location


@pytest.mark.parametrize("scaling", ["standard", "quantile"])
def test_the_decoder_graph_mixes_in_the_tails_of_near_constant_columns(
    numeric, scaling
):
    # A column 99.3% at 0 gets a wide tail (GaussianLikelihood.set_grid): its
    # censored mean mixes the two Gaussians' in the graph too.
    X_train, _, _ = numeric
    frame = pd.DataFrame(np.exp(X_train / 3), columns=[f"c{i}" for i in range(6)])
    frame["rare"] = 0.0
    frame.loc[:1, "rare"] = [1.5, 2.5]
    vae = VAETransformer(3, scaling=scaling, **ONNX_FIT).fit(frame)
    assert vae.codec_.likelihood_grid().tail_share[-1] > 0
    Z = vae.transform(frame.iloc[:50]).astype(np.float32)
    Z[:5] *= 4  # far out, where the tail weighs most
    Z[5:10] *= 50  # locations kept near the masses (GaussianLikelihood.located)
    (decoded,) = run(to_onnx(vae, decoder=True), {"Z": Z})
    expected = vae.inverse_transform(Z).to_numpy(np.float64)
    assert_allclose(decoded, expected, atol=1e-4, rtol=1e-4)


def test_both_graphs_follow_the_maps_of_quantile_scaling(numeric):
    # Each column's map to normal scores is a sum of Relu ramps in the encoder;
    # the decoder's mean through the inverse map uses Erf, as in Python.
    X_train, X_test, _ = numeric
    columns = [f"c{i}" for i in range(6)]
    frame = pd.DataFrame(np.exp(X_train / 3), columns=columns)  # skewed
    frame["spend"] = np.maximum(X_train[:, 0], 0.0)  # half the rows at 0
    frame["count"] = np.clip(np.rint(3 + 2 * X_train[:, 1]), 0, 9).astype(np.int64)
    vae = VAETransformer(3, scaling="quantile", **ONNX_FIT).fit(frame)
    assert vae.column_likelihoods_[-2:].tolist() == ["point_mass", "discrete"]
    test = pd.DataFrame(np.exp(X_test / 3), columns=columns)
    test["spend"] = np.maximum(X_test[:, 0], 0.0)
    test["count"] = np.clip(np.rint(3 + 2 * X_test[:, 1]), 0, 9).astype(np.int64)
    test.iloc[::5, 1] = np.nan  # a hole: 0 on the scores
    test.iloc[1, 2] = 1e3  # beyond the training range: the end segment's line
    onx = to_onnx(vae, test.iloc[:5])
    feeds = {c: test[[c]].to_numpy(np.float32) for c in test.columns}
    (Z,) = run(onx, feeds)
    assert_allclose(Z, vae.transform(test), atol=1e-4, rtol=1e-4)
    (decoded,) = run(to_onnx(vae, decoder=True), {"Z": Z})
    expected = vae.inverse_transform(Z).to_numpy(np.float64)
    assert_allclose(decoded[:, :-1], expected[:, :-1], atol=1e-4, rtol=1e-4)
    # The integer column is the mean rounded: a mean within float32's
    # rounding of a half may round the other way.
    assert np.abs(decoded[:, -1] - expected[:, -1]).max() <= 1
    assert (decoded[:, -1] == expected[:, -1]).mean() >= 0.95


def test_the_encoder_graph_keeps_steep_maps_precise():
    # Half the rows in a cluster 1e-4 wide: the map's slope is steep there,
    # and a sum of ramps would lose it to float32's cancellation.
    rng = np.random.default_rng(0)
    cluster = 100 + 1e-4 * rng.normal(size=600)
    X = np.where(rng.random(600) < 0.5, cluster, 100 + 50 * rng.lognormal(size=600))
    X = np.column_stack([X, rng.normal(size=600)]).astype(np.float32)
    vae = VAETransformer(2, scaling="quantile", **ONNX_FIT).fit(X)
    (Z,) = run(to_onnx(vae, X[:5]), {"X": X})
    assert_allclose(Z, vae.transform(X), atol=1e-4, rtol=0)


def test_what_cannot_be_exported_is_a_clear_error():
    df, _ = mixed()
    vae = VAETransformer(2, **ONNX_FIT).fit(df)
    with pytest.raises(ValueError, match=r"categorical columns \['colour', 'shiny'\]"):
        to_onnx(vae, decoder=True)
    with pytest.raises(ValueError, match="each column gets its own input"):
        to_onnx(vae, np.zeros((2, 4), dtype=np.float32))
    floats = pd.DataFrame({"x": [0.5, 1.5, 2.5] * 20, "y": np.arange(60.0)})
    categorical = VAETransformer(1, categorical_features=["x"], **ONNX_FIT).fit(floats)
    with pytest.raises(ValueError, match=r"'x' has levels \[0\.5, 1\.5, 2\.5\]"):
        to_onnx(categorical, floats)
    with pytest.raises(ValueError, match="needs X"):
        to_onnx(vae)


def test_registration_serves_skl2onnx_users(numeric):
    import skl2onnx

    X_train, X_test, _ = numeric
    vae = VAETransformer(2, **ONNX_FIT).fit(X_train)
    register_onnx_converter()
    register_onnx_converter()  # twice is harmless
    (Z,) = run(skl2onnx.to_onnx(vae, X_train[:2]), {"X": X_test})
    assert_allclose(Z, vae.transform(X_test), atol=1e-5, rtol=0)


def test_a_missing_extra_says_what_to_install(numeric, monkeypatch):
    import sys

    X_train, _, _ = numeric
    vae = VAETransformer(2, **ONNX_FIT).fit(X_train)
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "skvae\[onnx\]"'):
        to_onnx(vae, X_train)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_pipeline_exports_in_the_inputs_float_type(dtype):
    # float64 is pandas' and NumPy's default: the latent takes the input's type,
    # so that the classifier after it is built for it (onnxruntime refused the
    # graph of a float32 latent ahead of a float64 classifier).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)).astype(dtype)
    y = (X[:, 0] > 0).astype(int)
    pipe = Pipeline(
        [("vae", VAETransformer(2, **ONNX_FIT)), ("clf", LogisticRegression())]
    ).fit(X, y)
    onx = to_onnx(pipe, X, options={LogisticRegression: {"zipmap": False}})
    label, proba = ort.InferenceSession(onx.SerializeToString()).run(None, {"X": X})
    assert proba.dtype == dtype
    assert_array_equal(label, pipe.predict(X))
    assert_allclose(proba, pipe.predict_proba(X), atol=1e-5)


def test_infinite_entries_read_as_missing_in_the_graph(numeric):
    # transform refuses infinities; the graph cannot raise, and it gave NaN
    # probabilities (and label 0) for them. It now reads them as missing, as
    # transform's error advises: the output is that of the row with NaN there.
    X_train, X_test, y_train = numeric
    pipe = Pipeline(
        [("vae", VAETransformer(2, **ONNX_FIT)), ("clf", LogisticRegression())]
    ).fit(X_train, y_train)
    infinite = X_test[:4].copy()
    infinite[0, 1] = np.inf
    infinite[1, 2] = -np.inf
    infinite[2, [0, 3]] = [np.inf, -np.inf]
    with pytest.raises(ValueError, match="infinity"), np.errstate(invalid="ignore"):
        pipe.predict_proba(infinite)
    as_missing = np.where(np.isinf(infinite), np.nan, infinite)
    labels, probabilities = run(
        to_onnx(pipe, X_train[:5], options=NO_ZIPMAP), {"X": infinite}
    )
    assert np.isfinite(probabilities).all()
    assert_allclose(probabilities, pipe.predict_proba(as_missing), atol=1e-5, rtol=0)
    assert_array_equal(labels, pipe.predict(as_missing))


def test_an_infinite_code_in_a_float_categorical_input_reads_as_missing():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"code": rng.integers(0, 4, 200).astype(np.float64), "x": rng.normal(size=200)}
    )
    vae = VAETransformer(2, categorical_features=["code"], **ONNX_FIT).fit(frame)
    test = frame.iloc[:3].copy()
    test["code"] = [np.inf, -np.inf, 2.5]  # 2.5: no level, as in transform
    expected = vae.transform(test.assign(code=[np.nan, np.nan, 2.5]))
    # float64 inputs (pandas' default) failed to export here before: the graph
    # compared them with a float32 constant.
    for dtype in (np.float64, np.float32):
        onx = to_onnx(vae, frame.iloc[:5].astype(dtype))
        (Z,) = run(onx, {c: test[[c]].to_numpy(dtype) for c in test.columns})
        assert_allclose(Z, expected, atol=1e-5, rtol=0)
