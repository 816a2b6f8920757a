"""A label-aware latent (``target_weight``) and class-conditional samples."""

import pickle

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from skvae import VAETransformer

from .helpers import FAST, make_table


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def labelled(digits):
    X_train, _, y_train, _ = digits
    # 300 epochs: the classes separate before early stopping would end.
    return VAETransformer(
        2, target_weight=10, hidden_layer_sizes=(64,), max_iter=300, random_state=0
    ).fit(X_train, y_train)


def _accuracy(vae, digits):
    X_train, X_test, y_train, y_test = digits
    clf = LogisticRegression(max_iter=1000).fit(vae.transform(X_train), y_train)
    return clf.score(vae.transform(X_test), y_test)


@pytest.mark.slow
def test_labels_make_a_2d_latent_that_separates_the_classes(digits, labelled):
    X_train, _, y_train, _ = digits
    plain = VAETransformer(2, max_iter=60, hidden_layer_sizes=(64,), random_state=0)
    plain.fit(X_train, y_train)  # target_weight=0: y ignored
    assert plain.classes_ is None and plain.target_type_ is None
    assert _accuracy(labelled, digits) > _accuracy(plain, digits) + 0.1
    assert _accuracy(labelled, digits) > 0.8
    assert_array_equal(labelled.classes_, np.arange(10))
    assert labelled.target_type_ == "multiclass"


def test_target_weight_zero_ignores_y(blobs):
    a = VAETransformer(2, **FAST).fit(blobs)
    b = VAETransformer(2, **FAST).fit(blobs, y=np.arange(len(blobs)) % 3)
    assert_array_equal(a.transform(blobs), b.transform(blobs))


def test_rows_without_labels_train_the_model(digits):
    X_train, _, y_train, _ = digits
    rng = np.random.default_rng(0)
    hidden = rng.random(len(y_train)) < 0.9  # 10% labelled
    as_int = np.where(hidden, -1, y_train)
    as_float = np.where(hidden, np.nan, y_train.astype(float))
    as_object = np.where(hidden, None, y_train.astype(str).astype(object))
    params = dict(n_components=2, target_weight=10, **FAST)
    ints = VAETransformer(**params).fit(X_train, as_int)
    floats = VAETransformer(**params).fit(X_train, as_float)
    strings = VAETransformer(**params).fit(X_train, pd.Series(as_object))
    assert_array_equal(ints.classes_, np.arange(10))  # -1 is not a class
    assert_array_equal(floats.classes_, np.arange(10.0))
    assert_array_equal(strings.classes_, [str(i) for i in range(10)])
    # The same rows are labelled, with the same classes in the same order.
    assert_allclose(ints.transform(X_train), floats.transform(X_train))


@pytest.mark.parametrize(
    "y, match",
    [
        (np.full(200, -1), "no labelled rows"),
        (np.full(200, np.nan), "no labelled rows"),
        (np.r_[np.full(100, -1), np.ones(100)], "single class .* besides -1"),
        (np.arange(199), "y has 199 rows but X has 200"),
        (np.eye(200, 3, dtype=int), "multilabel-indicator"),
        (np.array([{"a": 1}] * 200), "Unknown label type"),
        (np.r_[np.inf, np.zeros(199) + 0.5], "infinity"),
        (np.array(["two", 0, 1, 2] * 50, dtype=object), "mixes labels of different"),
    ],
    ids=[
        "all-minus-one",
        "all-nan",
        "one-class",
        "length",
        "multilabel",
        "dict",
        "inf",
        "strings-and-numbers",
    ],
)
def test_bad_labels_get_clear_errors(blobs, y, match):
    with pytest.raises(ValueError, match=match):
        VAETransformer(2, target_weight=1, **FAST).fit(blobs, y)


def test_target_weight_needs_y(blobs):
    with pytest.raises(ValueError, match="requires y to be passed"):
        VAETransformer(2, target_weight=1, **FAST).fit(blobs)


@pytest.mark.slow
def test_continuous_targets_train_a_linear_head():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 3)) @ rng.normal(size=(3, 6))
    X += 0.1 * rng.normal(size=X.shape)
    # The target is the data's least-varied direction of structure, which an
    # unsupervised 1-D latent leaves out.
    centred = X - X.mean(axis=0)
    y = centred @ np.linalg.svd(centred, full_matrices=False)[2][2]
    y_missing = y.copy()
    y_missing[::4] = np.nan
    # Small batches: with few steps an epoch, the training loss stalls early. At 60
    # epochs (two seeds): R^2 0.002-0.034 plain, 0.996-0.999 guided.
    params = dict(hidden_layer_sizes=(32,), batch_size=64, max_iter=60, random_state=0)
    plain = VAETransformer(1, **params).fit(X)
    guided = VAETransformer(1, target_weight=10, **params).fit(X, y_missing)
    assert guided.target_type_ == "continuous" and guided.classes_ is None

    def r2(vae):
        Z = vae.transform(X)
        return Ridge().fit(Z, y).score(Z, y)

    assert r2(plain) < 0.2
    assert r2(guided) > 0.8
    two = VAETransformer(1, target_weight=1, **params).fit(
        X, np.column_stack([y, y_missing])
    )
    assert two.target_type_ == "continuous-multioutput"


def test_partial_fit_is_only_there_without_labels():
    assert hasattr(VAETransformer(), "partial_fit")
    vae = VAETransformer(target_weight=1)
    assert not hasattr(vae, "partial_fit")
    with pytest.raises(AttributeError, match="no attribute 'partial_fit'") as error:
        vae.partial_fit(np.ones((3, 2)))
    assert "only available with target_weight=0" in str(error.value.__cause__)


def test_grid_search_tunes_target_weight(digits):
    X_train, _, y_train, _ = digits
    pipe = Pipeline(
        [
            ("vae", VAETransformer(2, max_iter=20, hidden_layer_sizes=(32,))),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    )
    search = GridSearchCV(pipe, {"vae__target_weight": [0, 30]}, cv=2)
    search.fit(X_train[:600], y_train[:600])
    assert search.best_params_ == {"vae__target_weight": 30}


# -- class-conditional samples -------------------------------------------------------
def test_sample_draws_rows_of_the_requested_class(digits, labelled):
    X_train, _, y_train, _ = digits
    judge = LogisticRegression(max_iter=2000).fit(X_train, y_train)
    rows = labelled.sample(200, y=3, random_state=0, noise=False)
    assert rows.shape == (200, 64)
    assert np.mean(judge.predict(rows) == 3) > 0.8
    # One label per row, in any order. Class 1 is the hardest to draw: 0.72-0.76
    # of its rows read as 1 (two seeds, with and without near-constant tails).
    wanted = np.repeat([1, 7], 50)
    rows = labelled.sample(100, y=wanted, random_state=0, noise=False)
    assert np.mean(judge.predict(rows) == wanted) > 0.75
    # Without y: the classes at their training frequencies.
    drawn = judge.predict(labelled.sample(500, random_state=0, noise=False))
    assert len(np.unique(drawn)) == 10
    # Reproducible with random_state.
    assert_array_equal(
        labelled.sample(5, y=2, random_state=1), labelled.sample(5, y=2, random_state=1)
    )


def test_sample_by_class_errors(blobs, labelled):
    with pytest.raises(ValueError, match=r"labels the model was not fitted with: \[11"):
        labelled.sample(3, y=11)
    with pytest.raises(ValueError, match="y has 2 labels but n_samples=3"):
        labelled.sample(3, y=[1, 2])
    plain = VAETransformer(2, **FAST).fit(blobs)
    with pytest.raises(ValueError, match=r"fitted with no labels.*target_weight > 0"):
        plain.sample(3, y=1)
    regressor = VAETransformer(2, target_weight=1, **FAST).fit(blobs, blobs[:, 0])
    with pytest.raises(ValueError, match="fitted with a continuous target"):
        regressor.sample(3, y=1)


def test_class_samples_of_a_mixed_table_keep_its_dtypes():
    table = make_table(300)
    y = np.where(table["f64"] > 0, "up", "down")
    vae = VAETransformer(2, target_weight=10, **FAST).fit(table, y)
    assert list(vae.classes_) == ["down", "up"]
    rows = vae.sample(50, y="up", random_state=0)
    assert isinstance(rows, pd.DataFrame)
    assert list(rows.dtypes) == list(table.dtypes)


def test_a_class_prior_survives_saving(labelled, tmp_path):
    restored = pickle.loads(pickle.dumps(labelled))
    assert_array_equal(
        restored.sample(4, y=5, random_state=0), labelled.sample(4, y=5, random_state=0)
    )
    skops_io = pytest.importorskip("skops.io")
    path = tmp_path / "model.skops"
    skops_io.dump(labelled, path)
    loaded = skops_io.load(path, trusted=["skvae._transformer.VAETransformer"])
    assert_array_equal(
        loaded.sample(4, y=5, random_state=0), labelled.sample(4, y=5, random_state=0)
    )
    assert_array_equal(loaded.classes_, labelled.classes_)


def test_labels_train_in_periods_on_large_data(blobs, monkeypatch):
    """Above PERIOD_ROWS rows the class prior follows each period's rows."""
    from skvae import _model, _training

    monkeypatch.setattr(_training, "PERIOD_ROWS", 100)
    fitted_rows = []
    original = _model.fit_class_prior

    def spy(module, x, *args, **kwargs):
        fitted_rows.append(x.shape[0])
        return original(module, x, *args, **kwargs)

    monkeypatch.setattr(_training, "fit_class_prior", spy)
    y = np.where(blobs[:, 0] > 0, 1, -1)  # one class labelled, the rest not
    y[::3] = 0
    vae = VAETransformer(
        2, target_weight=5, max_iter=2, batch_size=16, hidden_layer_sizes=(16,)
    ).fit(blobs, y)
    assert len(vae.loss_curve_) == 4  # 200 rows: 2 periods an epoch, 2 epochs
    # Each period's rows, then all the rows once more after training.
    assert fitted_rows == [96, 104, 96, 104, 200]
    assert np.isfinite(vae.module_.class_prior.means.numpy()).all()


@pytest.mark.parametrize(
    "make_y",
    [
        lambda b: np.where(np.arange(len(b)) % 5 == 0, None, b).astype(object),
        lambda b: pd.Series(pd.array(b, dtype="boolean")).mask(
            np.arange(len(b)) % 4 == 0
        ),
        lambda b: b.astype(object),
    ],
    ids=["object-with-None", "boolean-with-NA", "object-bools"],
)
def test_boolean_labels_with_holes(blobs, make_y):
    # None and pd.NA mark rows without a label in any y, booleans included.
    y = make_y(blobs[:, 0] > 0)
    vae = VAETransformer(2, target_weight=5.0, **FAST).fit(blobs, y)
    assert vae.classes_.tolist() == [False, True] and vae.target_type_ == "binary"
    assert vae.sample(4, y=True, random_state=0).shape == (4, blobs.shape[1])


@pytest.mark.parametrize(
    "make_y, kind",
    [
        (lambda c: pd.Series(c, dtype="Int64"), "multiclass"),
        (
            lambda c: pd.Series(c, dtype="Int64").mask(np.arange(len(c)) % 5 == 0),
            "multiclass",
        ),
        (lambda c: pd.Series(c, dtype="int64[pyarrow]"), "multiclass"),
        (lambda c: pd.Series(pd.Categorical(c)), "multiclass"),
        (
            lambda c: [None if i % 5 == 0 else int(v) for i, v in enumerate(c)],
            "multiclass",
        ),
        (lambda c: pd.Series(c + 0.5, dtype="Float64"), "continuous"),
        (
            lambda c: [None if i % 5 == 0 else v + 0.5 for i, v in enumerate(c)],
            "continuous",
        ),
        (lambda c: c.astype(float).reshape(-1, 1), "continuous"),
        (
            lambda c: pd.DataFrame({"a": c * 10.0, "b": c * 1.0}),
            "continuous-multioutput",
        ),
    ],
    ids=[
        "Int64",
        "Int64-with-NA",
        "pyarrow-ints",
        "categorical-ints",
        "ints-with-None",
        "Float64",
        "floats-with-None",
        "a-column-of-whole-floats",
        "columns-of-whole-floats",
    ],
)
def test_labels_and_targets_in_the_dtypes_users_have(blobs, make_y, kind):
    # Nullable and pyarrow dtypes, categoricals and lists with None come as
    # objects, which type_of_target calls "unknown": they are read in their own
    # dtype. Floats given as columns are continuous targets, whole or not (1-D
    # whole floats read as classes, as type_of_target reads them).
    codes = (blobs[:, 0] > 0).astype(int) + (blobs[:, 1] > 0)
    vae = VAETransformer(2, target_weight=5.0, **FAST).fit(blobs, make_y(codes))
    assert vae.target_type_ == kind
    if kind == "multiclass":
        assert vae.classes_.tolist() == [0, 1, 2]
        assert vae.sample(3, y=2, random_state=0).shape == (3, blobs.shape[1])
