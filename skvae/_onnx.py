"""ONNX export: VAETransformer as an skl2onnx converter, and the decoder on its own.

``register_onnx_converter`` tells skl2onnx how to convert a fitted
VAETransformer (its ``transform``: the encoder's posterior mean), so that any
scikit-learn Pipeline or ColumnTransformer holding one converts as one graph.
``to_onnx`` registers it and converts. ``decoder=True`` exports
``inverse_transform`` instead, as a graph from latent points to the decoder mean.

The graph repeats what ``transform`` does before the network: missing numeric
entries (NaN) read as the training mean, standardisation, and for each categorical
column a one-hot block in which a missing or unknown level reads as the training
frequencies. Infinite entries, which ``transform`` refuses, read as missing too (a
graph cannot raise; see ``to_onnx``). Computation is in float32. skl2onnx, onnx
and onnxruntime are an optional extra (``pip install "skvae[onnx]"``), imported
here only.
"""

from __future__ import annotations

from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ._tabular import (
    BINARY,
    CATEGORICAL,
    CONTINUOUS,
    TableCodec,
    censored_steps,
    ramp_form,
)
from ._transformer import VAETransformer

if TYPE_CHECKING:
    from torch import nn

_ALIAS = "SkvaeVAETransformer"
_MIN_OPSET = 13


def _import(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"ONNX export needs {name.split('.')[0]}, which is not installed. "
            'Install the extra: pip install "skvae[onnx]".'
        ) from exc


def register_onnx_converter() -> None:
    """Register VAETransformer's converter with skl2onnx.

    Needed only to call ``skl2onnx.to_onnx`` or ``skl2onnx.convert_sklearn``
    directly; :func:`skvae.to_onnx` registers it itself. Registering again is
    harmless.

    Examples
    --------
    >>> import numpy as np
    >>> import skl2onnx
    >>> from skvae import VAETransformer, register_onnx_converter
    >>> X = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    >>> vae = VAETransformer(2, max_iter=3, random_state=0).fit(X)
    >>> register_onnx_converter()
    >>> onx = skl2onnx.to_onnx(vae, X)
    >>> [output.name for output in onx.graph.output]
    ['variable']
    """
    skl2onnx = _import("skl2onnx")
    skl2onnx.update_registered_converter(
        VAETransformer, _ALIAS, _shape_calculator, _converter
    )


def to_onnx(
    model: Any,
    X: Any = None,
    *,
    decoder: bool = False,
    target_opset: int | None = None,
    options: dict | None = None,
) -> Any:
    """Convert a fitted VAETransformer, or a model that holds one, to ONNX.

    Parameters
    ----------
    model : estimator
        A fitted :class:`VAETransformer`, or any fitted scikit-learn model that
        skl2onnx converts and that contains one, such as
        ``Pipeline([("vae", vae), ("clf", LogisticRegression())])``.

    X : array-like or DataFrame, default=None
        A few rows of input, from which skl2onnx names and types the graph's
        inputs: a numeric array gives one input ``X`` of shape (N, n_features); a
        DataFrame gives one input per column, of shape (N, 1), named after it:
        strings for text columns and categorical columns of text levels,
        whatever their first value; floats for every column of numbers or
        flags (integers, booleans, pandas' nullable and pyarrow dtypes such as
        ``Int64``, categorical columns of number levels), NaN where missing,
        all in one float type (float32 when every float column of the frame
        is float32, else float64); its column names must be strings. Not used
        with ``decoder=True``.

    decoder : bool, default=False
        Export ``inverse_transform`` of a VAETransformer instead: one input
        ``Z`` of shape (N, n_components), one output ``X`` with the decoder mean
        in the units of the data. Only for tables without categorical columns.

    target_opset : int or None, default=None
        ONNX opset to target (at least 13); None takes skl2onnx's latest.

    options : dict or None, default=None
        Passed to ``skl2onnx.to_onnx``, for instance
        ``{LogisticRegression: {"zipmap": False}}`` to get probabilities as a
        tensor.

    Returns
    -------
    onx : onnx.ModelProto
        The ONNX model; ``onx.SerializeToString()`` gives the bytes to save.

    Notes
    -----
    An infinite entry (``inf`` or ``-inf``) reads as missing in the graph: the
    latent point is that of ``transform`` on the row with NaN in its place.
    ``transform`` refuses infinite values with a ValueError that advises this
    very replacement, but a graph cannot raise, and passed through the network
    an infinity turns into NaN (``inf - inf``), so that a classifier after the
    VAETransformer gave NaN probabilities and an arbitrary label. Values beyond
    float32's range (about 3.4e38) become infinite in the graph's float32
    computation, and so read as missing as well. Check inputs for infinities
    before the session if they must be refused.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from skvae import VAETransformer, to_onnx
    >>> X = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    >>> X[0, 1] = np.nan
    >>> vae = VAETransformer(2, max_iter=3, random_state=0).fit(X)
    >>> onx = to_onnx(vae, X)
    >>> session = ort.InferenceSession(onx.SerializeToString())
    >>> Z = session.run(None, {"X": X})[0]
    >>> bool(np.allclose(Z, vae.transform(X), atol=1e-5))
    True
    """
    if decoder:
        return _decoder_model(model, target_opset)
    skl2onnx = _import("skl2onnx")
    if X is None:
        raise ValueError("to_onnx needs X, a few rows of input, to type the graph.")
    register_onnx_converter()
    if target_opset is not None and target_opset < _MIN_OPSET:
        raise ValueError(f"target_opset must be at least {_MIN_OPSET}.")
    X = _numpy_columns(X)
    return skl2onnx.to_onnx(model, X, target_opset=target_opset, options=options)


def _numpy_columns(X: Any) -> Any:
    """``X`` with its columns in dtypes that skl2onnx types inputs from.

    skl2onnx reads a DataFrame's input types from NumPy dtypes, and takes a
    column for strings only if its first value is one. Only a float input
    carries a missing value (NaN reads as missing in the graph), so every
    column of numbers or flags becomes a float input: NumPy's integers and
    booleans, pandas' nullable and pyarrow numbers and booleans (``Int64``,
    ``boolean``, ``Float64``, ``int64[pyarrow]``), which ``fit`` accepts and
    skl2onnx refuses, categorical columns of number or flag levels, and object
    columns of flags (a bool column with holes). All of them, and the float
    columns, take one float type, so that a model after the VAETransformer
    exports for it: float32 when every float column (NumPy, nullable or
    pyarrow) is float32, float64 otherwise. String columns (pandas' ``str``
    and ``string`` dtypes) and categorical columns of text levels become
    object columns: string inputs, whatever their first value. The graph
    names its inputs after the columns, which must be strings.
    """
    if not isinstance(X, pd.DataFrame):
        return X
    labels = [name for name in X.columns if not isinstance(name, str)]
    if labels:
        raise TypeError(
            "to_onnx names the graph's inputs after the DataFrame's columns, which "
            f"must be strings; got {labels[:5]!r}. Rename them, e.g. "
            "X.set_axis([str(c) for c in X.columns], axis=1), when fitting too."
        )
    floats = [t for t in map(_float_type, X.dtypes) if t is not None]
    single = bool(floats) and all(t == np.float32 for t in floats)
    number = np.float32 if single else np.float64
    types = pd.api.types
    dtypes: dict[str, Any] = {}
    for name, column in X.items():
        dtype = column.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            levels = dtype.categories.dtype
            if types.is_string_dtype(levels):
                flags = len(dtype.categories) and all(
                    isinstance(v, bool | np.bool_) for v in dtype.categories
                )
                dtypes[name] = number if flags else object
            elif types.is_bool_dtype(levels) or types.is_numeric_dtype(levels):
                dtypes[name] = number
        elif isinstance(dtype, pd.api.extensions.ExtensionDtype):
            if types.is_bool_dtype(dtype) or types.is_numeric_dtype(dtype):
                dtypes[name] = number
            elif types.is_string_dtype(dtype):
                dtypes[name] = object
        elif dtype.kind in "biuf" and dtype != number:
            dtypes[name] = number
        elif dtype.kind == "O":
            seen = column[column.notna()]
            if len(seen) and all(isinstance(v, bool | np.bool_) for v in seen):
                dtypes[name] = number
    return X.astype(dtypes) if dtypes else X


def _float_type(dtype: Any) -> np.dtype | None:
    """Return the NumPy float type of a NumPy, nullable or pyarrow float dtype."""
    if isinstance(dtype, pd.CategoricalDtype):
        return None
    if not isinstance(dtype, np.dtype):
        dtype = getattr(dtype, "numpy_dtype", None)
    return dtype if isinstance(dtype, np.dtype) and dtype.kind == "f" else None


# -- skl2onnx's side -----------------------------------------------------------------
def _shape_calculator(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    vae = operator.raw_operator
    n_rows = operator.inputs[0].get_first_dimension()
    # The latent takes the input's float type, as scikit-learn's own converters
    # do: skl2onnx builds what follows (a classifier) for the graph's float type,
    # and a float32 latent ahead of a float64 classifier made a graph that
    # onnxruntime refuses. The model itself runs in float32 either way.
    latent = DoubleTensorType if _double_input(operator) else FloatTensorType
    operator.outputs[0].type = latent([n_rows, vae.n_components_])


def _double_input(operator: Any) -> bool:
    return any(
        type(variable.type).__name__ == "DoubleTensorType"
        for variable in operator.inputs
    )


def _converter(scope: Any, operator: Any, container: Any) -> None:
    vae = operator.raw_operator
    check_is_fitted(vae)
    if container.target_opset < _MIN_OPSET:
        raise ValueError(
            f"VAETransformer converts to ONNX opset {_MIN_OPSET} or later, not "
            f"{container.target_opset}."
        )
    graph = _ContainerGraph(scope, container)
    inputs = [variable.full_name for variable in operator.inputs]
    kinds = [_input_kind(variable.type) for variable in operator.inputs]
    x = _encoded(graph, vae.codec_, inputs, kinds)
    mu = _encoder_mean(graph, vae.module_, x)
    if _double_input(operator):
        graph.op("Cast", [mu], output=operator.outputs[0].full_name, to=_DOUBLE)
    else:
        graph.op("Identity", [mu], output=operator.outputs[0].full_name)


def _input_kind(onnx_type: Any) -> str:
    name = type(onnx_type).__name__
    if name == "StringTensorType":
        return "string"
    if name in ("Int64TensorType", "Int32TensorType"):
        return "int"
    if name == "BooleanTensorType":
        return "bool"
    return "float32" if name == "FloatTensorType" else "float"


class _Graph:
    """A graph under construction; subclasses say where it goes.

    ``const`` adds an initializer and ``op`` a node; both return the name of what
    they add.
    """

    def const(self, hint: str, value: Any) -> str:
        name = self._unique(hint)
        self._add_initializer(name, _typed(value))
        return name

    def op(
        self,
        op_type: str,
        inputs: list[str],
        output: str | None = None,
        domain: str = "",
        **attrs: Any,
    ) -> str:
        output = output or self._unique(op_type.lower())
        self._add_node(op_type, inputs, output, domain, attrs)
        return output


class _ContainerGraph(_Graph):
    """Adds to an skl2onnx container, inside a converter."""

    def __init__(self, scope: Any, container: Any) -> None:
        self.scope, self.container = scope, container

    def _unique(self, hint: str) -> str:
        return self.scope.get_unique_variable_name(hint)

    def _add_initializer(self, name: str, value: np.ndarray) -> None:
        from onnx import TensorProto

        proto = {"b": TensorProto.BOOL, "i": TensorProto.INT64}.get(
            value.dtype.kind, TensorProto.FLOAT
        )
        self.container.add_initializer(
            name, proto, list(value.shape), value.ravel().tolist()
        )

    def _add_node(
        self, op_type: str, inputs: list[str], output: str, domain: str, attrs: dict
    ) -> None:
        self.container.add_node(
            op_type,
            inputs,
            [output],
            op_domain=domain,
            op_version=1 if domain == "ai.onnx.ml" else None,
            name=self.scope.get_unique_operator_name(op_type),
            **attrs,
        )


class _ListGraph(_Graph):
    """Collects initializers and nodes for a model built with onnx.helper."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def _unique(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def _add_initializer(self, name: str, value: np.ndarray) -> None:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(value, name))

    def _add_node(
        self, op_type: str, inputs: list[str], output: str, domain: str, attrs: dict
    ) -> None:
        from onnx import helper

        self.nodes.append(
            helper.make_node(op_type, inputs, [output], domain=domain, **attrs)
        )


def _typed(value: Any) -> np.ndarray:
    """Booleans stay booleans, integers become int64, the rest float32."""
    value = np.asarray(value)
    if value.dtype.kind == "b":
        return value
    return value.astype(np.int64 if value.dtype.kind in "iu" else np.float32)


# -- the graph ------------------------------------------------------------------------
_FLOAT = 1  # TensorProto.FLOAT
_DOUBLE = 11  # TensorProto.DOUBLE
_INT64 = 7  # TensorProto.INT64


def _encoded(
    graph: Any,
    codec: TableCodec,
    inputs: list[str],
    kinds: list[str],
) -> str:
    """Build the model's input matrix (N, width) in float32, as ``codec.encode``."""
    n_columns = len(codec.columns)
    if len(inputs) == 1 and n_columns > 1:
        if not codec.all_continuous:
            raise ValueError(
                "This VAETransformer has categorical columns: convert it from a "
                "DataFrame, so that each column gets its own input."
            )
        if kinds[0] not in ("float", "float32", "int"):
            raise ValueError(f"A numeric input is needed, got a {kinds[0]} tensor.")
        continuous = graph.op("Cast", inputs, to=_FLOAT)
        return _continuous(graph, codec, continuous)
    if len(inputs) != n_columns:
        raise ValueError(
            f"This VAETransformer has {n_columns} columns but the graph has "
            f"{len(inputs)} inputs: pass one input per column (a DataFrame) or one "
            "matrix."
        )
    blocks = []
    cont = codec.positions(CONTINUOUS)
    if cont:
        for i in cont:
            if kinds[i] == "string":
                raise ValueError(
                    f"Column {_label(codec, i)} is continuous, but its input holds "
                    "strings."
                )
        parts = [graph.op("Cast", [inputs[i]], to=_FLOAT) for i in cont]
        joined = parts[0] if len(parts) == 1 else graph.op("Concat", parts, axis=1)
        blocks.append(_continuous(graph, codec, joined))
    for i in codec.positions(BINARY) + codec.positions(CATEGORICAL):
        block = _one_hot(graph, codec, i, inputs[i], kinds[i])
        if codec.columns[i].kind == BINARY:  # one output: the second level's share
            block = graph.op(
                "Slice",
                [
                    block,
                    graph.const("start", [1]),
                    graph.const("end", [2]),
                    graph.const("axis", [1]),
                ],
            )
        blocks.append(block)
    return blocks[0] if len(blocks) == 1 else graph.op("Concat", blocks, axis=1)


def _continuous(graph: Any, codec: TableCodec, raw: str) -> str:
    mean = codec.continuous_attribute("mean").astype(np.float32)[None, :]
    filled = graph.op(
        "Where",
        [_not_finite(graph, raw), graph.const("mean", mean), raw],
    )
    if not codec.standardize:
        return filled
    scale = codec.continuous_attribute("scale").astype(np.float32)[None, :]
    centred = graph.op("Sub", [filled, graph.const("mean", mean)])
    standard = graph.op("Div", [centred, graph.const("scale", scale)])
    maps = codec.maps()
    if not maps:
        return standard
    # scaling="quantile": each map to normal scores, segment by segment; a
    # missing entry is 0 on the scores, as codec.encode fills it.
    scores = _segments(graph, standard, codec.n_continuous, dict(maps))
    return graph.op(
        "Where",
        [_not_finite(graph, raw), graph.const("zero", np.float32(0.0)), scores],
    )


def _expanded(
    graph: Any, x: str, n: int, knots: dict[int, np.ndarray], size: int
) -> str:
    """Return x[:, j] - knots[j][k] for each mapped column j, knot k: (N, m K).

    Columns repeated by a product with a 0/1 matrix, so that every step is a
    2-D op of any opset; the padding knots of shorter maps repeat the last.
    """
    columns = sorted(knots)
    repeat = np.zeros((n, len(columns) * size), np.float32)
    at = np.zeros((1, len(columns) * size), np.float32)
    for r, j in enumerate(columns):
        repeat[j, r * size : (r + 1) * size] = 1.0
        k = knots[j]
        at[0, r * size : (r + 1) * size] = np.concatenate(
            [k, np.full(size - len(k), k[-1])]
        )
    return graph.op(
        "Sub",
        [graph.op("MatMul", [x, graph.const("repeat", repeat)]), graph.const("at", at)],
    )


def _segments(graph: Any, x: str, n: int, knots: dict[int, np.ndarray]) -> str:
    """Map the columns of ``x`` (N, n) through their knots (2, K), as the codec.

    Each mapped column is f_0 + s_left min(v - x_0, 0) + sum_k s_k clip(v - x_k,
    0, x_{k+1} - x_k) + s_right max(v - x_last, 0): every term is bounded by
    its segment's rise, so that float32 keeps the map's precision where a
    dense cluster makes its slope steep. Other columns pass through.
    """
    columns = sorted(knots)
    size = max(knots[j].shape[1] for j in columns)
    gaps = _expanded(graph, x, n, {j: knots[j][0] for j in columns}, size)
    width = np.zeros((1, len(columns) * size), np.float32)
    slopes = np.zeros((len(columns) * size, n), np.float32)
    start, left = np.zeros((1, n), np.float32), np.ones((1, n), np.float32)
    end, right = np.zeros((1, n), np.float32), np.ones((1, n), np.float32)
    base = np.zeros((1, n), np.float32)
    for r, j in enumerate(columns):
        xp, fp = knots[j]
        k = len(xp)
        width[0, r * size : r * size + k - 1] = np.diff(xp)
        rates = np.diff(fp) / np.diff(xp)
        slopes[r * size : r * size + k - 1, j] = rates
        start[0, j], end[0, j], base[0, j] = xp[0], xp[-1], fp[0]
        left[0, j], right[0, j] = rates[0], rates[-1]
    inside = graph.op(
        "Min",
        [
            graph.op("Max", [gaps, graph.const("zero", np.float32(0.0))]),
            graph.const("width", width),
        ],
    )
    rises = graph.op("MatMul", [inside, graph.const("slopes", slopes)])
    below = graph.op(
        "Min",
        [
            graph.op("Sub", [x, graph.const("start", start)]),
            graph.const("zero", np.float32(0.0)),
        ],
    )
    above = graph.op(
        "Max",
        [
            graph.op("Sub", [x, graph.const("end", end)]),
            graph.const("zero", np.float32(0.0)),
        ],
    )
    ends = graph.op(
        "Add",
        [
            graph.op("Mul", [below, graph.const("left", left)]),
            graph.op("Mul", [above, graph.const("right", right)]),
        ],
    )
    return graph.op("Add", [graph.op("Add", [ends, rises]), graph.const("base", base)])


def _mapped_means(
    graph: Any,
    x: str,
    n: int,
    forms: dict[int, tuple],
    knots: dict[int, np.ndarray],
    sd: np.ndarray,
) -> str:
    """Means through each column's inverse map of Gaussians around ``x`` (N, n).

    What ``GaussianLikelihood._mapped_mean`` computes: the map as ramps and
    steps (``ramp_form``, ``censored_steps``) with max(v - t, 0) replaced by
    its expectation sd (d Phi(d) + phi(d)) and [v > t] by Phi(d),
    d = (x - t) / sd; ``sd`` (1, n). Other columns pass through.
    """
    columns = sorted(forms)
    size = max(len(knots[j]) for j in columns)
    gaps = _expanded(graph, x, n, knots, size)
    spread = np.ones((1, len(columns) * size), np.float32)
    for r, j in enumerate(columns):
        spread[0, r * size : (r + 1) * size] = sd[0, j]
    sd_name = graph.const("sd", spread)
    d = graph.op("Div", [gaps, sd_name])
    cdf = _cdf(graph, d)
    ramps = graph.op(
        "Mul",
        [sd_name, graph.op("Add", [graph.op("Mul", [d, cdf]), _pdf(graph, d)])],
    )
    changes = np.zeros((len(columns) * size, n), np.float32)
    steps = np.zeros((len(columns) * size, n), np.float32)
    slope = np.ones((1, n), np.float32)
    offset = np.zeros((1, n), np.float32)
    for r, j in enumerate(columns):
        x0, f0, left, change, jump, step = forms[j]
        changes[r * size : r * size + len(change), j] = change
        steps[r * size : r * size + len(step), j] = step
        slope[0, j], offset[0, j] = left, f0 + jump - left * x0
    bends = graph.op(
        "Add",
        [
            graph.op("MatMul", [ramps, graph.const("changes", changes)]),
            graph.op("MatMul", [cdf, graph.const("steps", steps)]),
        ],
    )
    line = graph.op(
        "Add",
        [
            graph.op("Mul", [x, graph.const("slope", slope)]),
            graph.const("offset", offset),
        ],
    )
    return graph.op("Add", [line, bends])


def _cdf(graph: Any, t: str) -> str:
    """0.5 (1 + erf(t / sqrt 2)), Phi from ONNX's Erf."""
    root_two = graph.const("root_two", np.float32(np.sqrt(2.0)))
    erf = graph.op("Erf", [graph.op("Div", [t, root_two])])
    return graph.op(
        "Mul",
        [
            graph.const("half", np.float32(0.5)),
            graph.op("Add", [erf, graph.const("one", np.float32(1.0))]),
        ],
    )


def _pdf(graph: Any, t: str) -> str:
    """exp(-t^2 / 2) / sqrt(2 pi)."""
    square = graph.op("Mul", [t, t])
    exponent = graph.op("Mul", [square, graph.const("minus_half", np.float32(-0.5))])
    return graph.op(
        "Mul",
        [
            graph.op("Exp", [exponent]),
            graph.const("inv_root_2pi", np.float32(1 / np.sqrt(2 * np.pi))),
        ],
    )


def _not_finite(graph: Any, x: str) -> str:
    """Return a node true where ``x`` is NaN or infinite: both read as missing.

    ``transform`` refuses infinities; a graph cannot raise, and an infinity fed to
    the network comes out as NaN (``inf - inf`` in the layers' sums), so it takes
    the missing value's path, the replacement ``transform``'s error advises.
    """
    return graph.op("Or", [graph.op("IsNaN", [x]), graph.op("IsInf", [x])])


def _one_hot(graph: Any, codec: TableCodec, i: int, name: str, kind: str) -> str:
    column = codec.columns[i]
    levels = list(column.categories)
    label = _label(codec, i)
    if kind == "string":
        if not all(isinstance(v, str) for v in levels):
            raise ValueError(
                f"Column {label} gets strings, but its levels {levels[:5]} are not."
            )
        onehot = graph.op(
            "OneHotEncoder",
            [name],
            domain="ai.onnx.ml",
            cats_strings=levels,
            zeros=1,
        )
    else:
        if all(isinstance(v, bool | np.bool_) for v in levels):
            codes = [int(v) for v in levels]
        elif all(
            isinstance(v, Integral | np.integer)
            or (isinstance(v, float) and v.is_integer())
            for v in levels
        ):
            codes = [int(v) for v in levels]
        else:
            raise ValueError(
                f"Column {label} has levels {levels[:5]}, which ONNX's OneHotEncoder "
                "cannot match: it takes strings or integers. Give the column "
                "string levels to export it."
            )
        if kind == "float32" and max(abs(c) for c in codes) > 2**24:
            # float32 holds every integer up to 2**24 only: 16777217 reads as
            # 16777216, and rows would match the wrong level or none
            raise ValueError(
                f"Column {label} has integer levels beyond 2**24 ({max(codes)}), "
                "which a float32 input cannot tell apart: give to_onnx rows with "
                "a float64 column, so that the inputs are float64."
            )
        value = graph.op("Cast", [name], to=_INT64)
        if kind in ("float", "float32"):
            # As in transform, NaN (missing), infinities and fractions (2.5 is not
            # level 2) match no level. Their casts to int64 are undefined or
            # truncate, so a code below every level replaces them after the cast,
            # which also keeps the comparison in the input's float type.
            unmatched = graph.op(
                "Or",
                [
                    _not_finite(graph, name),
                    graph.op(
                        "Not", [graph.op("Equal", [graph.op("Floor", [name]), name])]
                    ),
                ],
            )
            sentinel = graph.const("sentinel", np.int64(min(codes) - 1))
            value = graph.op("Where", [unmatched, sentinel, value])
        onehot = graph.op(
            "OneHotEncoder",
            [value],
            domain="ai.onnx.ml",
            cats_int64s=codes,
            zeros=1,
        )
    n_levels = len(levels)
    flat = graph.op("Reshape", [onehot, graph.const("shape", [-1, n_levels])])
    flat = graph.op("Cast", [flat], to=_FLOAT)
    # Missing and unknown levels match none: read them as the training frequencies.
    known = graph.op("ReduceSum", [flat, graph.const("axes", [1])], keepdims=1)
    unknown = graph.op("Sub", [graph.const("one", np.float32(1.0)), known])
    frequencies = column.frequencies.astype(np.float32)[None, :]
    share = graph.op("Mul", [unknown, graph.const("frequencies", frequencies)])
    return graph.op("Add", [flat, share])


def _gemm(graph: Any, layer: nn.Linear, x: str) -> str:
    weight = layer.weight.detach().cpu().numpy().astype(np.float32)
    bias = layer.bias.detach().cpu().numpy().astype(np.float32)
    return graph.op(
        "Gemm",
        [x, graph.const("weight", weight), graph.const("bias", bias)],
        transB=1,
    )


def _mlp(graph: Any, layers: nn.Sequential, x: str) -> str:
    from torch import nn  # a fitted model's module: torch is imported by now

    for layer in layers:
        x = (
            _gemm(graph, layer, x)
            if isinstance(layer, nn.Linear)
            else graph.op("Relu", [x])
        )
    return x


def _encoder_mean(graph: Any, module: nn.Module, x: str) -> str:
    encoder = module.encoder
    x = _in_range(graph, module, x)
    linear = _gemm(graph, encoder.linear, x)
    residual = _gemm(graph, encoder.mu, _mlp(graph, encoder.hidden, x))
    return graph.op("Add", [linear, residual])


def _in_range(graph: Any, module: nn.Module, x: str) -> str:
    """Return the inputs compressed beyond their training range, as ``encode``.

    ``_model.compress_beyond``: x - above + log(1 + above) + below - log(1 +
    below), with above = max(x - high, 0) and below = max(low - x, 0).
    """
    seen = getattr(module, "seen_range", None)
    if seen is None or not np.isfinite(np.concatenate(seen)).any():
        return x
    low, high = (
        graph.const(
            name,
            np.nan_to_num(v, posinf=_FAR, neginf=-_FAR).astype(np.float32)[None, :],
        )
        for name, v in zip(("seen_low", "seen_high"), seen, strict=True)
    )
    one = graph.const("one", np.float32(1.0))
    above = graph.op("Relu", [graph.op("Sub", [x, high])])
    below = graph.op("Relu", [graph.op("Sub", [low, x])])
    x = graph.op("Sub", [x, above])
    x = graph.op("Add", [x, graph.op("Log", [graph.op("Add", [above, one])])])
    x = graph.op("Add", [x, below])
    return graph.op("Sub", [x, graph.op("Log", [graph.op("Add", [below, one])])])


def _label(codec: TableCodec, i: int) -> str:
    name = codec.columns[i].name
    return f"{name!r}" if codec.is_frame else f"{name} (0-based index)"


# -- the decoder ----------------------------------------------------------------------
_FAR = 1e30  # stands for an infinite bound: its terms vanish in float32


def _standardised_means(graph: _ListGraph, vae: Any, out: str) -> str:
    """Return the columns' means in standardised units, from the Gaussians' ``out``.

    What ``GaussianLikelihood.mean`` computes, with Phi from ONNX's Erf: the
    censored means (``_censored_mean``) and the means through the maps
    (``_mapped_means``), with the learnt standard deviations, and mixed with
    the wide tails' where a near-constant column has one and either changes
    its mean.
    """
    codec = vae.codec_
    grid = codec.likelihood_grid()
    continuous = vae.module_.likelihood.continuous
    sd = np.exp(0.5 * continuous.log_var().detach().cpu().numpy())
    out = _located(graph, grid, out, sd)
    means = _censored_and_mapped(graph, codec, grid, out, sd)
    tailed = grid.tail_share > 0
    mapped = np.zeros_like(tailed)
    mapped[[j for j, _ in codec.maps()]] = True
    censored = np.isfinite(grid.low) | np.isfinite(grid.high)
    if not (tailed & (mapped | censored)).any():
        return means
    wide = _censored_and_mapped(
        graph, codec, grid, out, np.where(tailed, grid.tail_sd, sd)
    )
    share = np.where(tailed, grid.tail_share, 0.0)[None, :].astype(np.float32)
    return graph.op(
        "Add",
        [
            graph.op("Mul", [means, graph.const("narrow", 1.0 - share)]),
            graph.op("Mul", [wide, graph.const("share", share)]),
        ],
    )


def _located(graph: _ListGraph, grid: Any, out: str, sd: np.ndarray) -> str:
    """Return the locations kept near each censored bound, as ``located``.

    ``GaussianLikelihood.located``: lim + sd softplus((out - lim) / sd) beyond
    a low mass, mirrored at a high one, with softplus(t) = max(t, 0) +
    log(1 + exp(-b |t|)) / b (b: ``LOCATION_SHARPNESS``), which no float32
    input overflows.
    """
    from ._likelihoods import LOCATION_LIMIT, LOCATION_SHARPNESS  # torch: lazily

    has_low, has_high = np.isfinite(grid.low), np.isfinite(grid.high)
    if not (has_low.any() or has_high.any()):
        return out

    def const(name: str, values: np.ndarray) -> str:
        return graph.const(name, np.asarray(values, np.float32)[None, :])

    def softplus(t: str) -> str:
        sharp = graph.const("minus_sharpness", np.float32(-LOCATION_SHARPNESS))
        tail = graph.op("Exp", [graph.op("Mul", [graph.op("Abs", [t]), sharp])])
        one = graph.const("one", np.float32(1.0))
        inverse = graph.const("inverse_sharpness", np.float32(1 / LOCATION_SHARPNESS))
        return graph.op(
            "Add",
            [
                graph.op("Relu", [t]),
                graph.op(
                    "Mul", [graph.op("Log", [graph.op("Add", [one, tail])]), inverse]
                ),
            ],
        )

    sd_name = const("location_sd", sd)
    for has, bound, sign in ((has_low, grid.low, 1.0), (has_high, grid.high, -1.0)):
        if not has.any():
            continue
        lim = np.where(has, bound, 0.0) - sign * LOCATION_LIMIT * sd
        lim_name = const("location_lim", lim)
        gap = graph.op(
            "Mul",
            [graph.op("Sub", [out, lim_name]), graph.const("sign", np.float32(sign))],
        )
        moved = graph.op(
            "Add",
            [
                lim_name,
                graph.op(
                    "Mul",
                    [
                        const("signed_sd", sign * sd),
                        softplus(graph.op("Div", [gap, sd_name])),
                    ],
                ),
            ],
        )
        out = graph.op("Where", [graph.const("bounded", has[None, :]), moved, out])
    return out


def _censored_and_mapped(
    graph: _ListGraph, codec: TableCodec, grid: Any, out: str, sd: np.ndarray
) -> str:
    """Return the censored and mapped means for standard deviations ``sd``."""
    means = _censored_mean(graph, grid, out, sd)
    maps = codec.maps()
    if not maps:
        return means
    low, high = grid.low, grid.high
    forms = {
        j: (
            *ramp_form(k[1], k[0], np.isfinite(low[j]), np.isfinite(high[j])),
            *censored_steps(k[1], k[0], low[j], high[j]),
        )
        for j, k in maps
    }
    mapped = _mapped_means(
        graph, out, codec.n_continuous, forms, {j: k[1] for j, k in maps}, sd[None, :]
    )
    is_mapped = np.zeros((1, codec.n_continuous), bool)
    is_mapped[0, [j for j, _ in maps]] = True
    return graph.op("Where", [graph.const("mapped", is_mapped), mapped, means])


def _censored_mean(graph: _ListGraph, grid: Any, out: str, sd: np.ndarray) -> str:
    """Return the columns' means, in encoded units, from the Gaussians' ``out``.

    What ``GaussianLikelihood._censored_mean`` computes: at a point mass (see
    ``TableCodec.likelihood_grid``) the censored Gaussian's mean, with Phi from
    ONNX's Erf. Columns without a mass keep ``out``; a table without masses
    gets no nodes.
    """
    width, low, high = grid[:3]
    if not (np.isfinite(low).any() or np.isfinite(high).any()):
        return out
    half = 0.5 * width
    edge_a = np.where(np.isfinite(low), low + half, -_FAR)
    edge_b = np.where(np.isfinite(high), high - half, _FAR)

    def const(name: str, values: np.ndarray) -> str:
        return graph.const(name, np.asarray(values, np.float32)[None, :])

    def standard(edge: str, name: str) -> str:  # (edge - out) / sd
        return graph.op("Div", [graph.op("Sub", [edge, out]), const(name, sd)])

    a = standard(const("edge_a", edge_a), "sd_a")
    b = standard(const("edge_b", edge_b), "sd_b")

    def pdf(t: str) -> str:
        return _pdf(graph, t)

    p_a, p_b = _cdf(graph, a), _cdf(graph, b)
    lows = graph.op(
        "Mul", [const("low_mass", np.where(np.isfinite(low), low, 0.0)), p_a]
    )
    highs = graph.op(
        "Mul",
        [
            const("high_mass", np.where(np.isfinite(high), high, 0.0)),
            graph.op("Sub", [graph.const("one_b", np.float32(1.0)), p_b]),
        ],
    )
    inside = graph.op(
        "Add",
        [
            graph.op("Mul", [out, graph.op("Sub", [p_b, p_a])]),
            graph.op("Mul", [const("sd", sd), graph.op("Sub", [pdf(a), pdf(b)])]),
        ],
    )
    return graph.op("Add", [graph.op("Add", [lows, inside]), highs])


def _decoder_model(vae: Any, target_opset: int | None) -> Any:
    onnx = _import("onnx")
    from onnx import TensorProto, helper

    if not isinstance(vae, VAETransformer):
        raise TypeError(
            "decoder=True exports a VAETransformer's inverse_transform; got "
            f"{type(vae).__name__}."
        )
    check_is_fitted(vae)
    codec = vae.codec_
    if not codec.all_continuous:
        names = [c.name for c in codec.columns if c.kind != CONTINUOUS]
        raise ValueError(
            "decoder=True exports tables without categorical columns; this "
            f"VAETransformer has categorical columns {names}. Export the encoder, "
            "or decode in Python with inverse_transform."
        )
    opset = target_opset or _MIN_OPSET
    if opset < _MIN_OPSET:
        raise ValueError(f"target_opset must be at least {_MIN_OPSET}.")
    graph = _ListGraph()
    decoder = vae.module_.decoder
    out = graph.op(
        "Add",
        [
            _gemm(graph, decoder.linear, "Z"),
            _gemm(graph, decoder.out, _mlp(graph, decoder.hidden, "Z")),
        ],
    )
    if codec.standardize:
        out = _standardised_means(graph, vae, out)
        scale = codec.continuous_attribute("scale").astype(np.float32)[None, :]
        mean = codec.continuous_attribute("mean").astype(np.float32)[None, :]
        values = graph.op(
            "Add",
            [
                graph.op("Mul", [out, graph.const("scale", scale)]),
                graph.const("mean", mean),
            ],
        )
        low = codec.continuous_attribute("low").astype(np.float32)[None, :]
        high = codec.continuous_attribute("high").astype(np.float32)[None, :]
        values = graph.op(
            "Max",
            [
                graph.op("Min", [values, graph.const("high", high)]),
                graph.const("low", low),
            ],
        )
        integer = np.array(
            [pd.api.types.is_integer_dtype(c.dtype) for c in codec.columns]
        )
        if integer.any():  # as inverse_transform gives integer columns
            rounded = graph.op("Round", [values])
            values = graph.op(
                "Where", [graph.const("integer", integer[None, :]), rounded, values]
            )
    else:
        values = graph.op("Sigmoid", [out])
    graph.op("Identity", [values], output="X")
    n_components, width = vae.n_components_, codec.width
    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "skvae_decoder",
            [
                helper.make_tensor_value_info(
                    "Z", TensorProto.FLOAT, [None, n_components]
                )
            ],
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, width])],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="skvae",
    )
    onnx.checker.check_model(model)
    return model
