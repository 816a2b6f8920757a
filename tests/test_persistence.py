"""Saving and loading: pickle, joblib and skops hold plain data, and load it back."""

import copy
import json
import pickle
import zipfile

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
    with pytest.raises(ValueError, match=r"state format 99.*reads formats up to 3"):
        pickle.loads(data)


def test_a_damaged_state_is_a_clear_error(fitted):
    vae, _ = fitted
    state = vae.__getstate__()
    weights = state["module_"]["weights"]
    weights.pop(next(iter(weights)))
    restored = VAETransformer.__new__(VAETransformer)
    with pytest.raises(ValueError, match=r"state is invalid: module_\.weights"):
        restored.__setstate__(state)


def test_an_unfitted_estimator_round_trips():
    vae = VAETransformer(3, device=torch.device("cpu"))
    restored = pickle.loads(pickle.dumps(vae))
    assert restored.get_params()["n_components"] == 3
    assert restored.device == torch.device("cpu")  # the parameter as it was given
    assert isinstance(restored.device, torch.device)


# -- an edited or damaged state is one clear error ------------------------------------
# Table columns (see make_table): 0 f64, 1 f32, 2 i64, 3 flag (object once holed),
# 4 cat (categorical dtype, levels lo < mid < hi in the dtype's order), 5 obj,
# 6 text, 7 nint, 8 nbool.
F64, FLAG, CAT, TEXT = 0, 3, 4, 6


@pytest.fixture(scope="module")
def table_vae(table):
    return VAETransformer(2, **FAST).fit(table)


@pytest.fixture(scope="module")
def stream_vae(array):
    return VAETransformer(2, **FAST).partial_fit(array)


@pytest.fixture(scope="module")
def labelled_vae(array):
    labels = np.where(array[:, 0] > 0, "up", "down")
    return VAETransformer(2, target_weight=5.0, **FAST).fit(array, labels)


def _load_edited(vae, edit):
    """Load ``vae`` through pickle after ``edit`` changed its saved state."""
    state = copy.deepcopy(vae.__getstate__())
    edit(state)
    restored = type(vae).__new__(type(vae))
    restored.__setstate__(pickle.loads(pickle.dumps(state)))
    return restored


def _setter(*path_and_value):
    """An edit that sets ``state[path[0]][path[1]]... = value``."""
    *path, value = path_and_value

    def edit(state):
        target = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _edit_column(i, changes):
    def edit(state):
        state["_codec"]["columns"][i].update(changes)

    return edit


def _edit_weight(name, change):
    def edit(state):
        weights = state["module_"]["weights"]
        weights[name] = change(weights[name])

    return edit


def _swap_levels(i):
    def edit(state):
        column = state["_codec"]["columns"][i]
        levels = column["categories"]
        levels[0], levels[1] = levels[1], levels[0]
        column["frequencies"] = column["frequencies"][[1, 0, *range(2, len(levels))]]

    return edit


def _drop_level(i):
    """Remove a column's last level and its frequency: the model keeps its outputs."""

    def edit(state):
        column = state["_codec"]["columns"][i]
        column["categories"] = column["categories"][:-1]
        column["frequencies"] = column["frequencies"][:-1]
        if column["dtype"]["type"] == "category":
            column["dtype"]["categories"] = column["categories"]

    return edit


def _add_level(i):
    def edit(state):
        column = state["_codec"]["columns"][i]
        column["categories"] = [*column["categories"], "zz"]
        column["frequencies"] = np.append(column["frequencies"], 0.0)

    return edit


def _as_int64(array):
    return (array * 10).astype(np.int64)


def _with_nan(array):
    array = array.copy()
    array.flat[0] = np.nan
    return array


# The reproductions of the issue, each with the field its error must name.
TABLE_EDITS = [
    pytest.param(
        _edit_weight("encoder.linear.weight", _as_int64),
        r"module_\.weights\['encoder\.linear\.weight'\]: has dtype int64, expected "
        "a floating-point array",
        id="int64 weight matrix",
    ),
    pytest.param(
        _edit_weight("decoder.out.bias", _with_nan),
        r"module_\.weights\['decoder\.out\.bias'\]: holds NaN",
        id="NaN weight",
    ),
    pytest.param(
        _edit_column(F64, {"scale": 0.0}),
        r"_codec column 'f64': scale must be positive and finite, got 0\.0",
        id="zero scale",
    ),
    pytest.param(
        _edit_column(F64, {"scale": -1.0}),
        r"_codec column 'f64': scale must be positive and finite, got -1\.0",
        id="negative scale",
    ),
    pytest.param(
        _swap_levels(CAT),
        r"_codec column 'cat': categories .* differ from those of its categorical",
        id="swapped levels of a categorical dtype",
    ),
    pytest.param(
        _swap_levels(TEXT),
        r"_codec column 'text': categories must be in sorted order",
        id="swapped levels of a string column",
    ),
    pytest.param(
        _swap_levels(FLAG),
        r"_codec column 'flag': categories must be in sorted order",
        id="swapped levels of a boolean column",
    ),
    pytest.param(
        _drop_level(TEXT),
        r"_codec column 'text': a column of 2 levels is binary, not categorical",
        id="removed level",
    ),
    pytest.param(
        _edit_column(TEXT, {"categories": ["a", "b", "c", "d"]}),
        r"_codec column 'text': frequencies must be a float array of one frequency "
        r"per level \(4\)",
        id="added level",
    ),
    pytest.param(
        _add_level(TEXT),
        r"_codec column 'text': has 4 levels, but the model has 3 outputs",
        id="added level and frequency",
    ),
    pytest.param(
        _edit_column(F64, {"low": 5.0, "high": -5.0}),
        r"_codec column 'f64': low \(5\.0\) is above high \(-5\.0\)",
        id="low above high",
    ),
    pytest.param(
        _edit_column(F64, {"high": -2.0, "low": -3.0}),
        r"_codec column 'f64': mean \(.*\) lies outside the range seen in "
        r"training, \[-3\.0, -2\.0\]",
        id="range below the mean",
    ),
    pytest.param(
        _edit_column(FLAG, {"dtype": {"type": "numpy", "name": None}}),
        r"_codec column 'flag': dtype must name its dtype",
        id="dtype without a name",
    ),
    pytest.param(
        _edit_column(FLAG, {"dtype": {"type": "numpy", "name": "|i1"}}),
        r"_codec column 'flag': dtype int8 holds numbers, but the column's levels "
        "are flags",
        id="flags given an integer dtype",
    ),
    pytest.param(
        _edit_column(TEXT, {"dtype": {"type": "pandas", "name": "Float64"}}),
        r"_codec column 'text': dtype Float64 holds numbers, but the column's "
        "levels are text",
        id="text given a number dtype",
    ),
    pytest.param(
        _edit_column(F64, {"dtype": {"type": "numpy", "name": "<M8[ns]"}}),
        r"_codec column 'f64': dtype datetime64\[ns\] is none that fit takes",
        id="a date dtype",
    ),
    pytest.param(
        _edit_column(F64, {"dtype": {"type": "numpy", "name": "no such"}}),
        r"_codec column 'f64': dtype .* is no dtype",
        id="unknown dtype",
    ),
    pytest.param(
        _edit_column(F64, {"kind": "ordinal"}),
        r"_codec column 'f64': kind must be .* got 'ordinal'",
        id="unknown column kind",
    ),
    pytest.param(
        _setter("device_", "foo"),
        r"device_: must name a cpu, cuda, mps device, got 'foo'",
        id="device foo",
    ),
    pytest.param(
        _setter("device_", "meta"),
        r"device_: must name a cpu, cuda, mps device, got 'meta'",
        id="device meta",
    ),
    pytest.param(
        _setter("n_features_in_", "9"),
        r"n_features_in_: must be the int 9, .* got '9'",
        id="n_features_in_ a string",
    ),
    pytest.param(
        _setter("n_features_in_", 8),
        r"n_features_in_: must be the int 9",
        id="n_features_in_ another count",
    ),
    # Further fields a fit saves, each of which changes the outputs.
    pytest.param(
        _edit_weight("encoder.mu.weight", lambda w: w[:, :-1]),
        r"module_\.weights\['encoder\.mu\.weight'\]: has shape \(2, 31\), expected "
        r"\(2, 32\)",
        id="weight of the wrong shape",
    ),
    pytest.param(
        _edit_weight("likelihood.cat_index", lambda w: w[:, ::-1].copy()),
        r"module_\.weights\['likelihood\.cat_index'\]: does not match",
        id="edited level index",
    ),
    pytest.param(
        _setter("module_", "weights", "encoder.extra", np.zeros(3)),
        r"module_\.weights: has entries the model does not: \['encoder\.extra'\]",
        id="unknown weight",
    ),
    pytest.param(
        _setter("module_", "min_variance", -1.0),
        r"module_\.min_variance: must be positive and finite",
        id="negative minimum variance",
    ),
    pytest.param(
        _setter("module_", "continuous", "poisson"),
        r"module_\.continuous: must be 'gaussian' or 'bernoulli'",
        id="unknown likelihood",
    ),
    pytest.param(
        _setter("module_", "n_components", True),
        r"module_\.n_components: must be an int >= 0, got True",
        id="a bool for a width",
    ),
    pytest.param(
        _setter("_codec", "standardize", False),
        r"_codec\.standardize: is False, but the model's continuous likelihood is "
        "'gaussian'",
        id="standardisation flipped",
    ),
    pytest.param(
        _edit_column(F64, {"mean": np.nan}),
        r"_codec column 'f64': mean must be a finite number",
        id="NaN mean",
    ),
    pytest.param(
        _edit_column(F64, {"at_low": 1.5}),
        r"_codec column 'f64': at_low must be a share in \[0, 1\], got 1.5",
        id="share at a bound above 1",
    ),
    pytest.param(
        _edit_column(F64, {"decimals": 40}),
        r"_codec column 'f64': decimals must be an int from -1 to 6, got 40",
        id="decimals out of range",
    ),
    pytest.param(
        _edit_column(F64, {"decimal_shares": np.full(8, 0.5)}),
        r"_codec column 'f64': decimal_shares \(the shares of values by fewest "
        r"decimals, 0 to 6 and more\) must be None or 8 finite shares >= 0 "
        r"summing to 1",
        id="shares of decimals above 1",
    ),
    pytest.param(
        _edit_column(TEXT, {"decimal_shares": np.eye(8)[0]}),
        r"_codec column 'text': a discrete column has no decimal_shares",
        id="shares of decimals on a discrete column",
    ),
    pytest.param(
        _edit_column(TEXT, {"numeric_levels": True}),
        r"_codec column 'text': numeric_levels says the levels are numbers, but "
        r"they are \['a', 'b', 'c'\]",
        id="text levels as numbers",
    ),
    pytest.param(
        _edit_column(F64, {"numeric_levels": True}),
        r"_codec column 'f64': a continuous column has no numeric_levels",
        id="numeric levels on a continuous column",
    ),
    pytest.param(
        _edit_column(TEXT, {"numeric_levels": "yes"}),
        r"_codec column 'text': numeric_levels must be a bool, got 'yes'",
        id="numeric levels not a bool",
    ),
    pytest.param(
        _edit_column(TEXT, {"frequencies": np.array([0.9, 0.9, 0.9])}),
        r"_codec column 'text': frequencies must lie in \[0, 1\] and sum to at most 1",
        id="frequencies above 1",
    ),
    pytest.param(
        _edit_column(TEXT, {"categories": ["a", "a", "c"]}),
        r"_codec column 'text': categories repeat a level",
        id="repeated level",
    ),
    pytest.param(
        _edit_column(FLAG, {"kind": "categorical"}),
        r"_codec column 'flag': a column of 2 levels is binary",
        id="binary column typed categorical",
    ),
    pytest.param(
        _edit_column(1, {"name": "f64"}),
        r"_codec\.columns: repeat a column name",
        id="repeated column name",
    ),
    pytest.param(
        _setter("feature_names_in_", np.array(list("abcdefghi"), dtype=object)),
        r"feature_names_in_: differ from the codec's column names",
        id="feature names",
    ),
    pytest.param(
        _setter("kl_per_component_", np.array([1.0, -1.0])),
        r"kl_per_component_: must hold finite values >= 0",
        id="negative KL",
    ),
    pytest.param(
        _setter("n_iter_", -3),
        r"n_iter_: must be an int >= 0, got -3",
        id="negative n_iter_",
    ),
    pytest.param(
        _setter("categories_", [None] * 9),
        r"categories_: differ from the codec's levels",
        id="categories_",
    ),
    pytest.param(
        _setter("classes_", np.array(["a", "b"], dtype=object)),
        r"classes_: must be None: the model has no class labels",
        id="classes without a class head",
    ),
]


@pytest.mark.parametrize(("edit", "match"), TABLE_EDITS)
def test_an_edited_state_is_one_error_naming_the_field(table_vae, edit, match):
    with pytest.raises(
        ValueError, match=r"^The saved VAETransformer's state is invalid: " + match
    ):
        _load_edited(table_vae, edit)


def _swap_classes(state):
    state["classes_"] = state["classes_"][::-1].copy()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        pytest.param(
            _swap_classes, r"classes_: must be unique and in sorted", id="swapped"
        ),
        pytest.param(
            _setter("module_", "target", {"kind": "classes", "n_outputs": 3}),
            r"module_\.target: \{'kind': 'classes', 'n_outputs': 3\} does not match",
            id="class count",
        ),
    ],
)
def test_edited_class_labels_are_refused(labelled_vae, edit, match):
    with pytest.raises(ValueError, match=match):
        _load_edited(labelled_vae, edit)


def _moment(key, change):
    def edit(state):
        entry = state["_stream"]["moments"][2]
        entry[key] = change(entry[key])

    return edit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        pytest.param(
            _moment("exp_avg", _with_nan),
            r"_stream\.moments\[2\] \(encoder\.hidden\.0\.weight\)\['exp_avg'\]: "
            "holds NaN",
            id="NaN moment",
        ),
        pytest.param(
            _moment("exp_avg_sq", lambda m: m[:1]),
            r"_stream\.moments\[2\] \(encoder\.hidden\.0\.weight\)\['exp_avg_sq'\]: "
            r"has shape \(1, 6\), expected \(32, 6\)",
            id="moment of the wrong shape",
        ),
        pytest.param(
            _moment("exp_avg_sq", lambda m: -m - 1),
            r"\['exp_avg_sq'\]: must be >= 0",
            id="negative second moment",
        ),
        pytest.param(
            _setter("_stream", "param_groups", 0, "lr", float("inf")),
            r"_stream\.param_groups\[0\]\['lr'\]: must be positive and finite",
            id="infinite learning rate",
        ),
        pytest.param(
            _setter("_stream", "generator_state", np.zeros(3)),
            r"_stream\.generator_state: must be a 1-D uint8 array",
            id="generator state",
        ),
        pytest.param(
            _setter("_stream", "statistics", "std", -np.ones(6)),
            r"_stream\.statistics\['std'\]: must be 6 finite values >= 0",
            id="negative running std",
        ),
        pytest.param(
            _setter("_stream", "statistics", "mean", np.ones(2)),
            r"_stream\.statistics\['mean'\]: has shape \(2,\), expected \(6,\)",
            id="running mean of the wrong shape",
        ),
        pytest.param(
            _setter("_stream", "statistics", "decimal_counts", -np.ones((6, 8))),
            r"_stream\.statistics\['decimal_counts'\]: must be finite weights >= 0 "
            r"of shape \(6, 8\)",
            id="negative counts of decimals",
        ),
    ],
)
def test_an_edited_optimizer_state_is_refused(stream_vae, edit, match):
    with pytest.raises(ValueError, match=match):
        _load_edited(stream_vae, edit)


def test_widths_larger_than_the_stored_weights_allocate_nothing(table_vae, monkeypatch):
    # The file: 9 KB whose hidden widths read (15000, 15000) allocated
    # 4 GB before failing. The widths are refused against the stored arrays
    # before the module is built at all, even on the meta device.
    def no_build(data):
        raise AssertionError("the module was built")

    resource = pytest.importorskip("resource")  # POSIX only
    monkeypatch.setattr(persistence, "_meta_module", no_build)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(
        ValueError,
        match=r"module_\.hidden_layer_sizes: \[15000, 15000\] does not match the "
        r"stored weights: encoder\.hidden\.0\.weight has shape \(32, 13\)",
    ):
        _load_edited(
            table_vae, _setter("module_", "hidden_layer_sizes", [15000, 15000])
        )
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 200 * 1024


def test_an_edited_skops_file_is_refused(table_vae, tmp_path):
    path = tmp_path / "model.skops"
    skops_io.dump(table_vae, path)
    trusted = ["skvae._transformer.VAETransformer"]
    _edit_skops(path, ["device_"], "meta")
    with pytest.raises(ValueError, match=r"state is invalid: device_: .* 'meta'"):
        skops_io.load(path, trusted=trusted)
    skops_io.dump(table_vae, path)
    _edit_skops(path, ["_codec", "columns", F64, "scale"], -1.0)
    with pytest.raises(ValueError, match=r"_codec column 'f64': scale must be"):
        skops_io.load(path, trusted=trusted)
    skops_io.dump(table_vae, path)
    _edit_skops(path, ["module_", "hidden_layer_sizes", 0], 15000)
    with pytest.raises(ValueError, match=r"module_\.hidden_layer_sizes: \[15000\]"):
        skops_io.load(path, trusted=trusted)


def _edit_skops(path, keys, value):
    """Set one JSON value of the state in a skops file, as an editor would."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(files["schema.json"])
    node = schema["content"]  # the estimator's state dict
    for key in keys:
        node = node["content"][key]
    assert node["__loader__"] == "JsonNode", node
    node["content"] = json.dumps(value)
    # skops memoises the objects it loads by their saving id, which equal values
    # share (the int 32 of hidden_layer_sizes, say): an id no object had.
    node["__id__"] = -1
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(
    "kind", ["stream_vae", "labelled_vae", "bernoulli", "one level"]
)
def test_genuine_models_of_every_kind_pass_the_checks(kind, array, request):
    if kind.endswith("_vae"):
        vae, X = request.getfixturevalue(kind), array
    elif kind == "bernoulli":
        X = (array > 0).astype(float)
        vae = VAETransformer(2, likelihood="bernoulli", **FAST).fit(X)
    else:  # a column of a single level is a categorical column of one output
        X = pd.DataFrame({"x": array[:, 0], "c": pd.Series(["a"] * len(array))})
        vae = VAETransformer(1, **FAST).fit(X)
        assert vae.codec_.cardinalities == [1]
    assert_same_model(pickle.loads(pickle.dumps(vae)), vae, X)


@pytest.mark.parametrize("device", ["cuda:0", "mps"])
def test_a_model_fitted_on_a_missing_gpu_loads_on_the_cpu(fitted, device):
    vae, X = fitted
    available = {
        "cuda:0": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if available[device]:
        pytest.skip(f"{device} is present here")
    restored = _load_edited(vae, _setter("device_", device))
    assert restored.device_ == torch.device("cpu")
    assert_array_equal(restored.transform(X), vae.transform(X))


def test_a_model_saved_before_n_threads_loads_with_its_default():
    X = np.random.default_rng(0).normal(size=(60, 3))
    for estimator in (
        VAETransformer(max_iter=2, random_state=0),
        VAEImputer(max_iter=2, random_state=0),
    ):
        state = estimator.fit(X).__getstate__()
        del state["n_threads"]
        loaded = type(estimator).__new__(type(estimator))
        loaded.__setstate__(state)
        assert loaded.get_params()["n_threads"] == "auto"
