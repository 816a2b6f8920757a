"""A fitted estimator's state as plain data, and back.

What pickle, joblib and skops save of a fitted VAETransformer is its ``__dict__``
with every torch and pandas object replaced by data: the weights as NumPy arrays
with the architecture as numbers, the column codec as dicts of strings, numbers and
lists, devices as strings. Loading rebuilds the module and the codec from them, so
that a skops file holds nothing that needs trusting but skvae's own classes, a
model fitted on a GPU loads on a CPU-only machine, and the size of a saved model
does not depend on the number of training rows.

After ``partial_fit``, the optimizer's state (Adam's moment estimates, as arrays)
and the random generator's state are saved too, so that a loaded model continues
training where it stopped. ``fit`` keeps no optimizer state: it starts afresh.
"""

from __future__ import annotations

import itertools
import math
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._holes import KEYS as HOLE_KEYS
from ._likelihoods import GaussianLikelihood, TableLikelihood
from ._model import VAE, ClassPrior, GaussianTarget
from ._streaming import Stream, new_stream
from ._tabular import (
    AUTO,
    AUTO_ARRAY,
    BINARY,
    CATEGORICAL,
    CONTINUOUS,
    DISCRETE,
    FAMILIES,
    GAUSSIAN,
    MAX_DECIMALS,
    NOT_RECORDED,
    Column,
    RunningMoments,
    TableCodec,
)
from ._version import InconsistentVersionWarning, __version__

# Raised when the layout of the saved state changes; loading a newer format fails
# with a clear error instead of a traceback from inside torch.
# 2: the module may hold a target head (``target``); 3: the codec's range holds
# every row fitted, and the encoder compresses inputs beyond it
# (``VAE.set_seen_range``). Files of format 2 load without the compression,
# as they were trained: a stream's range was then its first batch's.
STATE_FORMAT = 3


def dump_state(state: dict[str, Any]) -> dict[str, Any]:
    """Turn an estimator's ``__dict__`` into plain data (a new dict)."""
    state = dict(state, _skvae_version=__version__, _skvae_state_format=STATE_FORMAT)
    # scikit-learn's callbacks observe a fit; they are no part of the model, and
    # a saved model holds plain data only.
    state.pop("_skl_callbacks", None)
    if isinstance(state.get("device_"), torch.device):
        state["device_"] = str(state["device_"])
    if isinstance(state.get("device"), torch.device):  # a parameter: kept as given
        state["device"] = {"torch.device": str(state["device"])}
    if "module_" in state:
        state["module_"] = _module_to_data(state["module_"])
    if "_codec" in state:
        state["_codec"] = _codec_to_data(state["_codec"])
    if state.get("_stream") is not None:
        state["_stream"] = _stream_to_data(state["_stream"])
    if state.get("categories_") is not None:
        state["categories_"] = [
            None if c is None else np.array([_plain(v) for v in c], dtype=object)
            for c in state["categories_"]
        ]
    return state


def load_state(state: dict[str, Any], estimator_name: str) -> dict[str, Any]:
    """Rebuild what ``dump_state`` made plain (a new dict).

    The plain data is checked first (see ``check_state``): a state that is not
    what a fit saves, edited or damaged, is one ValueError naming the field,
    before anything is built from it.

    Parameters
    ----------
    state : dict
        What ``dump_state`` returned, as pickle or skops gives it back.
    estimator_name : str
        Class of the loaded estimator, for the messages.

    Returns
    -------
    dict
        The estimator's ``__dict__``, with its torch module, codec and devices.

    Raises
    ------
    ValueError
        For a state this version cannot read, or one that fails a check.

    Warns
    -----
    InconsistentVersionWarning
        When another skvae version saved the state.
    """
    state = dict(state)
    version = state.pop("_skvae_version", None)
    state_format = state.pop("_skvae_state_format", None)
    if state_format is None:
        raise ValueError(
            f"This {estimator_name} was saved by a development version of skvae "
            f"older than {__version__}'s saving format and cannot be loaded. Refit "
            "it, or load it with the skvae version that saved it."
        )
    if not isinstance(state_format, int) or state_format > STATE_FORMAT:
        raise ValueError(
            f"This {estimator_name} was saved by skvae {version} in state format "
            f"{state_format}; skvae {__version__} reads formats up to "
            f"{STATE_FORMAT}. Install skvae>={version} to load it."
        )
    if version != __version__:
        warnings.warn(
            InconsistentVersionWarning(
                estimator_name=estimator_name,
                current_skvae_version=__version__,
                original_skvae_version=str(version),
            ),
            stacklevel=3,
        )
    try:
        check_state(state)
    except _InvalidState as exc:
        raise ValueError(
            f"The saved {estimator_name}'s state is invalid: {exc}. The file was "
            "damaged or edited after it was saved: load an intact copy, or refit."
        ) from None
    if isinstance(state.get("device"), dict):
        state["device"] = torch.device(state["device"]["torch.device"])
    if "device_" in state:
        state["device_"] = _loading_device(state["device_"])
    if "_codec" in state:
        try:
            state["_codec"] = _codec_from_data(state["_codec"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"The saved {estimator_name}'s column encoding could not be rebuilt "
                f"({type(exc).__name__}: {exc}). Load it with the pandas version it "
                "was saved with, or refit it."
            ) from None
    if "module_" in state:
        state["module_"] = _module_from_data(
            state["module_"], state.get("device_", torch.device("cpu")), estimator_name
        )
    if state.get("_stream") is not None:
        state["_stream"] = _stream_from_data(state["_stream"], state, estimator_name)
    if "_codec" in state:  # the likelihood's grid is the codec's, not saved
        codec = state["_codec"]
        grid, seen = codec.likelihood_grid(), codec.seen_range()
        for module in (
            state.get("module_"),
            getattr(state.get("_stream"), "module", None),
        ):
            if module is not None:
                module.likelihood.set_grid(*grid)
                if state_format >= 3:
                    module.set_seen_range(*seen)
    return state


def _loading_device(name: str) -> torch.device:
    """Return where a model fitted on ``name`` loads: the CPU for a GPU not here."""
    device = torch.device(name)
    if device.type == "cuda" and (
        not torch.cuda.is_available()
        or (device.index or 0) >= torch.cuda.device_count()
    ):
        return torch.device("cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        return torch.device("cpu")
    return device


# -- the module -----------------------------------------------------------------------
def _module_to_data(module: VAE) -> dict[str, Any]:
    likelihood = module.likelihood
    continuous = likelihood.continuous
    return {
        "n_features": module.encoder.linear.in_features,
        "n_components": module.encoder.mu.out_features,
        "hidden_layer_sizes": [
            layer.out_features
            for layer in module.encoder.hidden
            if isinstance(layer, nn.Linear)
        ],
        "n_continuous": likelihood.n_continuous,
        "continuous": (
            "gaussian" if isinstance(continuous, GaussianLikelihood) else "bernoulli"
        ),
        "min_variance": (
            math.exp(continuous.min_log_var)
            if isinstance(continuous, GaussianLikelihood)
            else None
        ),
        "n_binary": likelihood.n_binary,
        "cardinalities": list(likelihood.cardinalities),
        "target": _target_to_data(module.target),
        "weights": {
            name: tensor.detach().cpu().numpy().copy()
            for name, tensor in module.state_dict().items()
        },
    }


def _module_from_data(
    data: dict[str, Any], device: torch.device, estimator_name: str
) -> VAE:
    try:
        module = _meta_module(data).to_empty(device=device).double()
        weights = {
            name: torch.as_tensor(np.asarray(value))
            for name, value in data["weights"].items()
        }
        module.load_state_dict(weights)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"The saved {estimator_name} could not be rebuilt: its model state is "
            f"incomplete or inconsistent ({type(exc).__name__}: {exc})."
        ) from None
    return module.eval()


def _meta_module(data: dict[str, Any]) -> VAE:
    """Build the module ``data`` describes on the meta device: shapes, no storage.

    Building on the meta device allocates nothing, whatever the widths, and
    draws nothing from torch's global random state: every value comes from the
    saved weights.
    """
    with torch.device("meta"):
        likelihood = _likelihood(data)
        if data["min_variance"] is not None:
            likelihood.continuous.min_log_var = math.log(data["min_variance"])
        return VAE(
            data["n_features"],
            data["n_components"],
            data["hidden_layer_sizes"],
            likelihood,
            _target_from_data(data.get("target"), data["n_components"]),
        )


def _likelihood(data: dict[str, Any]) -> TableLikelihood:
    """Build the likelihood the saved module's numbers describe (current device)."""
    return TableLikelihood(
        data["n_continuous"],
        data["continuous"],
        data["n_binary"],
        tuple(data["cardinalities"]),
    )


def _target_to_data(target: Any) -> dict[str, Any] | None:
    if isinstance(target, ClassPrior):
        return {"kind": "classes", "n_outputs": int(target.means.shape[0])}
    if isinstance(target, GaussianTarget):
        return {"kind": "continuous", "n_outputs": int(target.linear.out_features)}
    return None


def _target_from_data(
    data: dict[str, Any] | None, n_components: int
) -> ClassPrior | GaussianTarget | None:
    if data is None:
        return None
    if data["kind"] == "classes":
        return ClassPrior(data["n_outputs"], n_components)
    return GaussianTarget(n_components, data["n_outputs"])


# -- the codec ------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """Return a Python scalar for a NumPy scalar, anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def _dtype_to_data(dtype: Any) -> dict[str, Any]:
    if isinstance(dtype, pd.CategoricalDtype):
        return {
            "type": "category",
            "categories": [_plain(v) for v in dtype.categories],
            "categories_dtype": str(dtype.categories.dtype),
            "ordered": bool(dtype.ordered),
        }
    if isinstance(dtype, pd.StringDtype):
        na = dtype.na_value
        return {
            "type": "string",
            "storage": dtype.storage,
            "na_value": "nan" if isinstance(na, float) and math.isnan(na) else "NA",
        }
    if isinstance(dtype, np.dtype):
        return {"type": "numpy", "name": dtype.str}
    return {"type": "pandas", "name": str(dtype)}


def _dtype_from_data(data: dict[str, Any]) -> Any:
    kind = data["type"]
    if kind == "category":
        categories = pd.Index(data["categories"], dtype=data["categories_dtype"])
        return pd.CategoricalDtype(categories, ordered=data["ordered"])
    if kind == "string":
        storage = data["storage"]
        if storage == "pyarrow_numpy":  # pandas 2.1-2.2's name for it
            storage = "pyarrow"
        if data["na_value"] == "nan" or storage != data["storage"]:
            return pd.StringDtype(storage, na_value=np.nan)  # pandas >= 2.3
        return pd.StringDtype(storage)
    if kind == "numpy":
        return np.dtype(data["name"])
    return pd.api.types.pandas_dtype(data["name"])


def _codec_to_data(codec: TableCodec) -> dict[str, Any]:
    columns = []
    for c in codec.columns:
        columns.append(
            {
                "name": _plain(c.name),
                "kind": c.kind,
                "dtype": _dtype_to_data(c.dtype),
                "categories": (
                    None if c.categories is None else [_plain(v) for v in c.categories]
                ),
                "mean": float(c.mean),
                "scale": float(c.scale),
                "low": float(c.low),
                "high": float(c.high),
                "integral": bool(c.integral),
                "frequencies": c.frequencies,
                "decimals": int(c.decimals),
                "at_low": float(c.at_low),
                "at_high": float(c.at_high),
                "requested": c.requested,
                "knots": c.knots,
                "decimal_shares": c.decimal_shares,
                "numeric_levels": bool(c.numeric_levels),
            }
        )
    return {
        "columns": columns,
        "is_frame": codec.is_frame,
        "standardize": codec.standardize,
    }


def _codec_from_data(data: dict[str, Any]) -> TableCodec:
    columns = []
    for c in data["columns"]:
        categories = c["categories"]
        columns.append(
            Column(
                name=c["name"],
                kind=c["kind"],
                dtype=_dtype_from_data(c["dtype"]),
                categories=(
                    None if categories is None else np.array(categories, dtype=object)
                ),
                mean=c["mean"],
                scale=c["scale"],
                low=c["low"],
                high=c["high"],
                integral=c["integral"],
                frequencies=c["frequencies"],
                decimals=c.get("decimals", NOT_RECORDED),  # absent before 0.1
                at_low=c.get("at_low", 0.0),
                at_high=c.get("at_high", 0.0),
                # absent before 0.1: every continuous column was a Gaussian
                requested=c.get("requested", GAUSSIAN),
                knots=c.get("knots"),  # absent before 0.1: no map
                # absent before 0.1: all at ``decimals``
                decimal_shares=c.get("decimal_shares"),
                # absent before 0.1: every level is the user's
                numeric_levels=c.get("numeric_levels", False),
            )
        )
    codec = TableCodec(columns, data["is_frame"], data["standardize"])
    codec.check_families()
    return codec


# -- partial_fit's training state -----------------------------------------------------
def _stream_to_data(stream: Stream) -> dict[str, Any]:
    saved = stream.optimizer.state_dict()
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
        for group in saved["param_groups"]
    ]
    # Adam keeps no state for a parameter that never had a gradient (the
    # variance of a table without continuous columns): the indices say whose.
    entries = sorted(saved["state"].items())
    moments = [
        {name: value.detach().cpu().numpy().copy() for name, value in entry.items()}
        for _, entry in entries
    ]
    return {
        "param_groups": groups,
        "moments": moments,
        "moment_index": [int(i) for i, _ in entries],
        "generator_device": str(stream.generator.device),
        "generator_state": stream.generator.get_state().numpy().copy(),
        "statistics": _moments_to_data(stream.moments),
    }


def _moments_to_data(moments: RunningMoments | None) -> dict[str, Any] | None:
    """Return a stream's column statistics as plain data (see ``RunningMoments``)."""
    if moments is None:
        return None
    data = {
        key: np.array(getattr(moments, key))
        for key in ("count", "mean", "std", "low", "high", "integral")
    }
    data["levels"] = [[int(i), np.array(c)] for i, c in moments.levels.items()]
    if moments.decimals is not None:
        data["decimals"] = np.array(moments.decimals, dtype=np.int64)
    for key in ("at_low", "at_high", "decimal_counts"):
        if getattr(moments, key) is not None:
            data[key] = np.array(getattr(moments, key), dtype=np.float64)
    return data


def _moments_from_data(data: dict[str, Any] | None) -> RunningMoments | None:
    """Rebuild ``_moments_to_data``'s; None (files before 0.1.0's) starts anew."""
    if data is None:
        return None
    arrays = {
        key: np.asarray(data[key], dtype=bool if key == "integral" else np.float64)
        for key in ("count", "mean", "std", "low", "high", "integral")
    }
    levels = {int(i): np.asarray(c, dtype=np.float64) for i, c in data["levels"]}
    decimals = data.get("decimals")  # absent before 0.1: not recorded
    if decimals is not None:
        decimals = np.asarray(decimals, dtype=np.int64)
    bounds = {  # absent before 0.1: unknown
        key: None if data.get(key) is None else np.asarray(data[key], np.float64)
        for key in ("at_low", "at_high", "decimal_counts")
    }
    return RunningMoments(**arrays, levels=levels, decimals=decimals, **bounds)


def _stream_from_data(
    data: dict[str, Any], state: dict[str, Any], estimator_name: str
) -> Stream:
    module = state["module_"]
    device = next(module.parameters()).device
    generator = torch.Generator(device=device)
    groups = [
        {k: tuple(v) if k == "betas" else v for k, v in group.items()}
        for group in data["param_groups"]
    ]
    index = data.get("moment_index", range(len(data["moments"])))  # older files
    moments = {
        int(i): {name: torch.as_tensor(np.asarray(v)) for name, v in entry.items()}
        for i, entry in zip(index, data["moments"], strict=True)
    }
    stream = new_stream(
        module,
        state["learning_rate"],
        generator,
        _moments_from_data(data.get("statistics")),
    )
    try:
        if data["generator_device"] == str(device):
            generator.set_state(torch.as_tensor(data["generator_state"]))
        else:  # another device's generator state does not transfer: a fresh seed
            generator.manual_seed(int(np.random.SeedSequence().generate_state(1)[0]))
        # Adam casts its state to the parameters' dtype: the stream's module
        # trains in float32.
        stream.optimizer.load_state_dict({"state": moments, "param_groups": groups})
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"The saved {estimator_name}'s optimizer state could not be rebuilt "
            f"({type(exc).__name__}: {exc}); fit it again."
        ) from None
    return stream


# -- checks of a saved state ----------------------------------------------------------
# A saved model is data that anyone may have edited. Loading it must give the
# model it describes or one clear error, never silently wrong outputs (an int64
# weight truncated on its way into the module, a negative scale, swapped levels)
# nor a failure deep inside torch, nor gigabytes allocated for a file of a few
# kilobytes. Every check reads the plain data; none builds anything but the module
# on the meta device, which allocates nothing.

DEVICE_TYPES = ("cpu", "cuda", "mps")  # where a fit can have run
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
COLUMN_KEYS = (
    "name",
    "kind",
    "dtype",
    "categories",
    "mean",
    "scale",
    "low",
    "high",
    "integral",
    "frequencies",
)
MODULE_KEYS = (
    "n_features",
    "n_components",
    "hidden_layer_sizes",
    "n_continuous",
    "continuous",
    "min_variance",
    "n_binary",
    "cardinalities",
    "weights",
)
STREAM_KEYS = ("param_groups", "moments", "generator_device", "generator_state")


class _InvalidState(ValueError):
    """A field of a saved state that fails a check (see ``_invalid``)."""


def _invalid(field: str, problem: str) -> _InvalidState:
    """Return the error for one field: ``load_state`` adds the estimator's name.

    Parameters
    ----------
    field : str
        Where the value sits in the state, as a user would look it up
        (``"module_.weights['encoder.linear.weight']"``, ``"_codec column 'age'"``).
    problem : str
        What is wrong with it, and what a fit would have saved.
    """
    return _InvalidState(f"{field}: {problem}")


def check_state(state: dict[str, Any]) -> None:
    """Check a saved state's plain data before anything is built from it.

    An unfitted estimator's state holds parameters only, which fit validates. A
    fitted one is checked whole: the column codec, the module's architecture and
    weights, their agreement, the fitted attributes that follow from them, and
    ``partial_fit``'s optimizer state.

    Parameters
    ----------
    state : dict
        What ``dump_state`` made, less the version fields.

    Raises
    ------
    _InvalidState
        A ValueError naming the first field that is not what a fit saves.
    """
    if isinstance(state.get("device"), dict):  # the parameter, as dump_state put it
        _check_device("device", state["device"].get("torch.device"), DEVICE_TYPES)
    if "module_" not in state:
        return
    for key in ("_codec", "device_", "n_features_in_"):
        if key not in state:
            raise _invalid(key, "is missing from the state of a fitted model")
    _check_device("device_", state["device_"], DEVICE_TYPES)
    columns = _check_codec(state["_codec"])
    module = _check_module(state["module_"])
    _check_layout(columns, state["_codec"]["standardize"], state["module_"])
    _check_features(state, columns)
    _check_column_attributes(state, columns)
    _check_latent_attributes(state, state["module_"])
    if state.get("_holes") is not None:  # None or absent: saved before holes
        _check_holes(state["_holes"], len(columns), state["module_"]["n_components"])
    if state.get("_stream") is not None:
        _check_stream(state["_stream"], module)
        _check_running_moments(state["_stream"].get("statistics"), columns)


# -- small predicates ---------------------------------------------------------------
def _show(value: Any) -> str:
    """Return a short repr: a damaged field may hold anything, of any length."""
    text = repr(_plain(value))
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return f"a {type(value).__name__}"


def _is_int(value: Any) -> bool:
    """Tell an integer, not a bool: True would pass for the width 1."""
    return isinstance(value, Integral) and not isinstance(value, bool | np.bool_)


def _is_finite(value: Any) -> bool:
    """Tell a finite real number, not a bool."""
    return (
        isinstance(value, Real)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(value)
    )


def _unique(values: Any) -> bool:
    try:
        return len(set(values)) == len(values)
    except TypeError:  # unhashable: no level or name of a fit is
        return False


def _ascending(values: Any) -> bool:
    try:
        return all(a < b for a, b in itertools.pairwise(values))
    except TypeError:  # levels of different types, which fit refuses to order
        return False


def _same(a: Any, b: Any) -> bool:
    """Tell whether two sequences hold equal items, whatever their containers."""
    try:
        return len(a) == len(b) and all(bool(x == y) for x, y in zip(a, b, strict=True))
    except (TypeError, ValueError):
        return False


def _is_float_array(value: Any, shape: tuple[int, ...]) -> bool:
    """Tell a float32 or float64 array of ``shape`` (any values)."""
    return (
        isinstance(value, np.ndarray) and value.dtype in FLOATS and value.shape == shape
    )


def _check_keys(field: str, data: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(data, dict):
        raise _invalid(field, f"must be a dict, got {_describe(data)}")
    missing = [key for key in keys if key not in data]
    if missing:
        raise _invalid(field, f"lacks the entries {missing}")


def _check_int(field: str, value: Any, minimum: int) -> int:
    if not _is_int(value) or value < minimum:
        raise _invalid(field, f"must be an int >= {minimum}, got {_show(value)}")
    return int(value)


def _check_float_array(field: str, value: Any, shape: tuple[int, ...]) -> None:
    """Check for a float32 or float64 array of ``shape``, every value finite."""
    if not isinstance(value, np.ndarray):
        raise _invalid(field, f"must be a NumPy array, got {_describe(value)}")
    if value.dtype not in FLOATS:
        raise _invalid(
            field, f"has dtype {value.dtype}, expected a floating-point array"
        )
    if value.shape != tuple(shape):
        raise _invalid(field, f"has shape {value.shape}, expected {tuple(shape)}")
    if not np.isfinite(value).all():
        raise _invalid(field, "holds NaN or infinite values")


def _check_device(field: str, value: Any, types: tuple[str, ...]) -> None:
    """Check for a device string torch reads, of one of ``types``."""
    if not isinstance(value, str):
        raise _invalid(
            field, f"must be a device string such as 'cpu', got {_describe(value)}"
        )
    try:
        device_type = torch.device(value).type
    except (RuntimeError, ValueError, TypeError):
        device_type = None
    if device_type not in types:
        raise _invalid(
            field, f"must name a {', '.join(types)} device, got {_show(value)}"
        )


# -- the codec ------------------------------------------------------------------------
def _check_codec(data: Any) -> list[dict[str, Any]]:
    """Check the column codec; return its columns."""
    _check_keys("_codec", data, ("columns", "is_frame", "standardize"))
    for key in ("is_frame", "standardize"):
        if not isinstance(data[key], bool | np.bool_):
            raise _invalid(f"_codec.{key}", f"must be a bool, got {_show(data[key])}")
    columns = data["columns"]
    if not isinstance(columns, list) or not columns:
        raise _invalid("_codec.columns", "must be a non-empty list of columns")
    for column in columns:
        _check_column(column)
    if not _unique([column["name"] for column in columns]):
        # decode builds a table keyed by name: a repeated one loses a column
        raise _invalid("_codec.columns", "repeat a column name")
    return columns


def _check_column(column: Any) -> None:
    name = column.get("name") if isinstance(column, dict) else None
    field = f"_codec column {_show(name)}"
    _check_keys(field, column, COLUMN_KEYS)
    kind = column["kind"]
    if kind not in (CONTINUOUS, BINARY, CATEGORICAL):
        raise _invalid(
            field,
            f"kind must be {CONTINUOUS!r}, {BINARY!r} or {CATEGORICAL!r}, got "
            f"{_show(kind)}",
        )
    if not isinstance(column["integral"], bool | np.bool_):
        raise _invalid(
            field, f"integral must be a bool, got {_show(column['integral'])}"
        )
    for key in ("at_low", "at_high"):  # absent before 0.1
        share = column.get(key, 0.0)
        if not (_is_finite(share) and 0 <= share <= 1):
            got = _show(share)
            raise _invalid(field, f"{key} must be a share in [0, 1], got {got}")
    requested = column.get("requested", GAUSSIAN)  # absent before 0.1
    allowed = [*FAMILIES, AUTO, AUTO_ARRAY]
    if not (isinstance(requested, str) and requested in allowed):
        raise _invalid(
            field, f"requested must be one of {allowed}, got {_show(requested)}"
        )
    decimals = column.get("decimals", NOT_RECORDED)  # absent before 0.1
    if not (_is_int(decimals) and NOT_RECORDED <= decimals <= MAX_DECIMALS):
        raise _invalid(
            field,
            f"decimals must be an int from {NOT_RECORDED} to {MAX_DECIMALS}, got "
            f"{_show(decimals)}",
        )
    if requested == DISCRETE and not (column["integral"] or decimals > 0):
        raise _invalid(
            field,
            "requested is 'discrete', but the column's values are on no grid "
            "(not whole numbers, decimals not recorded)",
        )
    dtype = column["dtype"]
    if not (isinstance(dtype, dict) and isinstance(dtype.get("type"), str)):
        raise _invalid(field, f"dtype must be a dict with a 'type', got {_show(dtype)}")
    _check_dtype(field, column, kind)
    numeric_levels = column.get("numeric_levels", False)  # absent before 0.1
    if not isinstance(numeric_levels, bool | np.bool_):
        raise _invalid(
            field, f"numeric_levels must be a bool, got {_show(numeric_levels)}"
        )
    if kind == CONTINUOUS:
        if numeric_levels:
            raise _invalid(field, "a continuous column has no numeric_levels")
        _check_statistics(field, column)
    else:
        _check_levels(field, column, kind)


def _check_dtype(field: str, column: dict[str, Any], kind: str) -> None:
    """Check that a column's dtype is one and can hold the column's levels.

    Outputs are cast to it: a discrete column's dtype of another kind than its
    levels (integers for flags, numbers for text) would change every output's
    values. A continuous column's may be any (``categorical_features=[]``
    models flags and numbers written as text as numbers).
    """
    data = column["dtype"]
    if data["type"] in ("numpy", "pandas") and not isinstance(data.get("name"), str):
        # np.dtype(None) is float64: a missing name would not fail, but change
        raise _invalid(field, f"dtype must name its dtype, got {_show(data)}")
    try:
        dtype = _dtype_from_data(data)
    except (TypeError, ValueError, KeyError) as error:  # ImportError: no pyarrow
        raise _invalid(field, f"dtype {_show(data)} is no dtype ({error})") from None
    types = pd.api.types
    if isinstance(dtype, pd.CategoricalDtype):
        held = "categories"
    elif types.is_bool_dtype(dtype):
        held = "flags"
    elif isinstance(dtype, np.dtype) and dtype.kind == "O":
        held = "objects"
    elif types.is_string_dtype(dtype):  # str, string, pyarrow's strings
        held = "text"
    elif types.is_numeric_dtype(dtype) and not types.is_complex_dtype(dtype):
        held = "numbers"
    else:  # dates, complex numbers: fit takes none
        raise _invalid(field, f"dtype {dtype} is none that fit takes")
    levels = column["categories"]
    if kind == CONTINUOUS or not (isinstance(levels, list | tuple) and levels):
        return  # _check_levels names a discrete column's missing levels
    if all(isinstance(v, bool | np.bool_) for v in levels):
        values = "flags"
    elif all(isinstance(v, str) for v in levels):
        values = "text"
    else:
        values = "numbers"
    if held not in (values, "objects", "categories"):
        raise _invalid(
            field,
            f"dtype {dtype} holds {held}, but the column's levels are {values}: "
            "outputs cast to it would change",
        )


def _check_statistics(field: str, column: dict[str, Any]) -> None:
    """Check a continuous column: the moments and range fit measured."""
    for key in ("mean", "low", "high"):
        if not _is_finite(column[key]):
            raise _invalid(
                field, f"{key} must be a finite number, got {_show(column[key])}"
            )
    scale = column["scale"]
    if not _is_finite(scale) or scale <= 0:
        raise _invalid(field, f"scale must be positive and finite, got {_show(scale)}")
    if column["low"] > column["high"]:
        raise _invalid(
            field,
            f"low ({_show(column['low'])}) is above high ({_show(column['high'])}): "
            "the range seen in training, which outputs are clipped to",
        )
    low, high, mean = column["low"], column["high"], column["mean"]
    slack = 1e-9 * max(1.0, abs(low), abs(high)) + 1e-6 * (high - low)
    if not low - slack <= mean <= high + slack:  # a mean of values in the range
        raise _invalid(
            field,
            f"mean ({_show(mean)}) lies outside the range seen in training, "
            f"[{_show(low)}, {_show(high)}], which holds every value it averages",
        )
    if column["categories"] is not None or column["frequencies"] is not None:
        raise _invalid(field, "a continuous column has no categories or frequencies")
    shares = column.get("decimal_shares")  # absent before 0.1
    if shares is not None and not (
        _is_float_array(shares, (MAX_DECIMALS + 2,))
        and np.all(np.isfinite(shares) & (shares >= 0))
        and abs(shares.sum() - 1.0) <= 1e-6
    ):
        raise _invalid(
            field,
            "decimal_shares (the shares of values by fewest decimals, 0 to "
            f"{MAX_DECIMALS} and more) must be None or {MAX_DECIMALS + 2} finite "
            f"shares >= 0 summing to 1; got {_describe(shares)}",
        )
    knots = column.get("knots")  # absent before 0.1
    if knots is not None and not (
        isinstance(knots, np.ndarray)
        and knots.dtype.kind == "f"
        and knots.ndim == 2
        and knots.shape[0] == 2
        and knots.shape[1] >= 2
        and np.isfinite(knots).all()
        and (np.diff(knots, axis=1) > 0).all()
    ):
        raise _invalid(
            field,
            "knots (the map to normal scores of scaling='quantile') must be None "
            "or a finite float array of shape (2, K), K >= 2, both rows strictly "
            f"increasing; got {_describe(knots)}",
        )


def _check_levels(field: str, column: dict[str, Any], kind: str) -> None:
    """Check a discrete column: its levels, in fit's order, and their frequencies.

    Fit takes a categorical dtype's levels in the dtype's order, and sorts any
    other column's (booleans: False, True): levels out of that order are
    swapped, and would decode every row to the wrong one.
    """
    if column.get("knots") is not None:
        raise _invalid(field, "a discrete column has no knots (no map to scores)")
    if column.get("decimal_shares") is not None:
        raise _invalid(field, "a discrete column has no decimal_shares")
    levels = column["categories"]
    if not isinstance(levels, list | tuple) or not levels:
        raise _invalid(
            field, f"categories must be a non-empty list of levels, got {_show(levels)}"
        )
    if not _unique(levels):
        raise _invalid(field, f"categories repeat a level: {_show(levels)}")
    n_levels = len(levels)
    if kind == BINARY and n_levels != 2:
        raise _invalid(field, f"a binary column has 2 levels, got {n_levels}")
    if kind == CATEGORICAL and n_levels == 2:
        raise _invalid(field, "a column of 2 levels is binary, not categorical")
    dtype = column["dtype"]
    if dtype["type"] == "category":
        if not _same(levels, dtype.get("categories", ())):
            raise _invalid(
                field,
                f"categories {_show(levels)} differ from those of its categorical "
                f"dtype {_show(dtype.get('categories'))}",
            )
    elif not _ascending(levels):
        raise _invalid(
            field,
            f"categories must be in sorted order, as fit leaves them, got "
            f"{_show(levels)}",
        )
    if column.get("numeric_levels", False) and not all(map(_is_finite, levels)):
        raise _invalid(
            field,
            f"numeric_levels says the levels are numbers, but they are {_show(levels)}",
        )
    frequencies = column["frequencies"]
    if not _is_float_array(frequencies, (n_levels,)):
        raise _invalid(
            field,
            f"frequencies must be a float array of one frequency per level "
            f"({n_levels}), got {_describe(frequencies)}",
        )
    # A share of the (weighted) rows per level: NaN fails both comparisons.
    if not (
        np.all(frequencies >= 0)
        and np.all(frequencies <= 1)
        and frequencies.sum() <= 1 + 1e-6
    ):
        raise _invalid(
            field,
            f"frequencies must lie in [0, 1] and sum to at most 1, got "
            f"{_show(frequencies.tolist())}",
        )


# -- the module -----------------------------------------------------------------------
def _check_module(data: Any) -> VAE:
    """Check the architecture and the weights; return the module on meta.

    The widths are checked against the stored arrays before the module is built
    even on the meta device (``_check_widths``); the meta module then gives
    every expected weight's name, shape and dtype.
    """
    _check_keys("module_", data, MODULE_KEYS)
    _check_architecture(data)
    weights = data["weights"]
    if not isinstance(weights, dict):
        raise _invalid("module_.weights", f"must be a dict, got {_describe(weights)}")
    for name, value in weights.items():
        if not isinstance(value, np.ndarray):
            raise _invalid(
                f"module_.weights[{_show(name)}]",
                f"must be a NumPy array, got {_describe(value)}",
            )
    _check_widths(data, weights)
    module = _meta_module(data)
    expected = module.state_dict()
    missing = [name for name in expected if name not in weights]
    if missing:
        raise _invalid("module_.weights", f"lacks {missing}")
    unknown = [name for name in weights if name not in expected]
    if unknown:
        raise _invalid(
            "module_.weights", f"has entries the model does not: {_show(unknown)}"
        )
    for name, tensor in expected.items():
        _check_weight(f"module_.weights[{name!r}]", weights[name], tensor)
    _check_level_index(data, weights)
    return module


def _check_architecture(data: dict[str, Any]) -> None:
    """Check the numbers that describe the module: types, ranges and sum."""
    n_features = _check_int("module_.n_features", data["n_features"], 1)
    _check_int("module_.n_components", data["n_components"], 0)
    hidden = data["hidden_layer_sizes"]
    if not (
        isinstance(hidden, list | tuple) and all(_is_int(h) and h >= 1 for h in hidden)
    ):
        raise _invalid(
            "module_.hidden_layer_sizes",
            f"must be a list of positive ints, got {_show(hidden)}",
        )
    n_continuous = _check_int("module_.n_continuous", data["n_continuous"], 0)
    n_binary = _check_int("module_.n_binary", data["n_binary"], 0)
    family, min_variance = data["continuous"], data["min_variance"]
    if family not in ("gaussian", "bernoulli"):
        raise _invalid(
            "module_.continuous",
            f"must be 'gaussian' or 'bernoulli', got {_show(family)}",
        )
    if family == "gaussian" and not (_is_finite(min_variance) and min_variance > 0):
        raise _invalid(
            "module_.min_variance",
            f"must be positive and finite, got {_show(min_variance)}",
        )
    if family == "bernoulli" and min_variance is not None:
        raise _invalid(
            "module_.min_variance",
            f"must be None for Bernoulli data, got {_show(min_variance)}",
        )
    cardinalities = data["cardinalities"]
    if not (
        isinstance(cardinalities, list | tuple)
        and all(_is_int(c) and c >= 1 for c in cardinalities)
    ):
        raise _invalid(
            "module_.cardinalities",
            f"must be a list of positive ints, got {_show(cardinalities)}",
        )
    total = n_continuous + n_binary + sum(cardinalities)
    if total != n_features:
        raise _invalid(
            "module_.n_features",
            f"is {n_features}, but n_continuous + n_binary + sum(cardinalities) is "
            f"{total}",
        )
    target = data.get("target")
    if target is not None:
        _check_keys("module_.target", target, ("kind", "n_outputs"))
        if target["kind"] not in ("classes", "continuous"):
            raise _invalid(
                "module_.target",
                f"kind must be 'classes' or 'continuous', got {_show(target['kind'])}",
            )
        _check_int("module_.target['n_outputs']", target["n_outputs"], 1)


def _check_widths(data: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
    """Check each width that sizes a layer against that layer's stored array.

    Before any build: the widths then allocate no more than the file holds. (A
    file of 9 KB whose hidden widths read (15000, 15000) allocated 4 GB before
    failing.) The other sizes, the likelihood's, are bounded by ``n_features``.
    """
    pins = [
        ("n_features", data["n_features"], "encoder.linear.weight", 1),
        ("n_components", data["n_components"], "encoder.linear.weight", 0),
    ]
    pins += [
        ("hidden_layer_sizes", width, f"encoder.hidden.{2 * i}.weight", 0)
        for i, width in enumerate(data["hidden_layer_sizes"])  # Linear, ReLU, ...
    ]
    target = data.get("target")
    if target is not None:
        layer = "target.log_pi" if target["kind"] == "classes" else "target.log_var"
        pins.append(("target", target["n_outputs"], layer, 0))
    for field, width, layer, axis in pins:
        array = weights.get(layer)
        if array is None:
            raise _invalid(
                "module_.weights",
                f"lacks {layer!r}, which module_.{field} = {_show(data[field])} "
                "implies",
            )
        if array.ndim <= axis or array.shape[axis] != width:
            raise _invalid(
                f"module_.{field}",
                f"{_show(data[field])} does not match the stored weights: {layer} "
                f"has shape {array.shape}",
            )


def _check_weight(field: str, value: np.ndarray, expected: torch.Tensor) -> None:
    """Check one weight against the meta module's: floats finite, indices exact."""
    shape = tuple(expected.shape)
    if expected.is_floating_point():
        _check_float_array(field, value, shape)
        return
    dtype = torch.empty((), dtype=expected.dtype).numpy().dtype
    if value.dtype != dtype or value.shape != shape:
        raise _invalid(
            field,
            f"has dtype {value.dtype} and shape {value.shape}, expected {dtype} and "
            f"{shape}",
        )


def _check_level_index(data: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
    """Check the likelihood's index buffers: where each column's logits sit.

    They follow from the cardinalities; an edited one reads another column's
    logits. The reference is built on the CPU: its size is that of the stored
    arrays, whose shapes are checked by now.
    """
    with torch.device("cpu"):
        reference = _likelihood(data)
    for name, tensor in reference.state_dict().items():
        if not tensor.is_floating_point():
            key = f"likelihood.{name}"
            if not np.array_equal(weights[key], tensor.numpy()):
                raise _invalid(
                    f"module_.weights[{key!r}]",
                    "does not match module_.cardinalities "
                    f"{_show(data['cardinalities'])}",
                )


# -- the codec and the module together ------------------------------------------------
def _check_layout(
    columns: list[dict[str, Any]], standardize: bool, module: dict[str, Any]
) -> None:
    """Check that the module's outputs are the codec's columns, level by level."""
    kinds = [column["kind"] for column in columns]
    for key, kind in (("n_continuous", CONTINUOUS), ("n_binary", BINARY)):
        if module[key] != kinds.count(kind):
            raise _invalid(
                f"module_.{key}",
                f"is {module[key]}, but the codec has {kinds.count(kind)} {kind} "
                "columns",
            )
    categorical = [column for column in columns if column["kind"] == CATEGORICAL]
    cardinalities = module["cardinalities"]
    if len(cardinalities) != len(categorical):
        raise _invalid(
            "module_.cardinalities",
            f"has {len(cardinalities)} entries, but the codec has "
            f"{len(categorical)} categorical columns",
        )
    for column, n_outputs in zip(categorical, cardinalities, strict=True):
        if len(column["categories"]) != n_outputs:
            raise _invalid(
                f"_codec column {_show(column['name'])}",
                f"has {len(column['categories'])} levels, but the model has "
                f"{n_outputs} outputs for it",
            )
    # Gaussian data are standardised; Bernoulli data are read as they are.
    if standardize != (module["continuous"] == "gaussian"):
        raise _invalid(
            "_codec.standardize",
            f"is {bool(standardize)}, but the model's continuous likelihood is "
            f"{module['continuous']!r}",
        )


def _check_features(state: dict[str, Any], columns: list[dict[str, Any]]) -> None:
    n_columns = len(columns)
    n_features_in = state["n_features_in_"]
    if not _is_int(n_features_in) or n_features_in != n_columns:
        raise _invalid(
            "n_features_in_",
            f"must be the int {n_columns}, the codec's number of columns, got "
            f"{_show(n_features_in)}",
        )
    if "feature_names_in_" not in state:
        return
    names = state["feature_names_in_"]
    if not (
        isinstance(names, np.ndarray)
        and names.dtype == object
        and names.shape == (n_columns,)
        and all(isinstance(name, str) for name in names)
    ):
        raise _invalid(
            "feature_names_in_",
            f"must be an object array of {n_columns} column names, got "
            f"{_describe(names)}",
        )
    if not _same(names, [column["name"] for column in columns]):
        raise _invalid("feature_names_in_", "differ from the codec's column names")


def _check_column_attributes(
    state: dict[str, Any], columns: list[dict[str, Any]]
) -> None:
    """Check the public attributes fit derives from the codec, one per column."""
    n_columns = len(columns)
    kinds = [column["kind"] for column in columns]
    if "is_categorical_" in state and not _same(
        state["is_categorical_"], [kind != CONTINUOUS for kind in kinds]
    ):
        raise _invalid("is_categorical_", "differs from the codec's column kinds")
    if "categories_" in state:
        categories = state["categories_"]
        expected = [column["categories"] for column in columns]
        if not (
            isinstance(categories, list)
            and len(categories) == n_columns
            and all(
                (c is None) == (e is None) and (c is None or _same(c, e))
                for c, e in zip(categories, expected, strict=True)
            )
        ):
            raise _invalid("categories_", "differ from the codec's levels")
    for key in ("mean_", "scale_"):
        if key in state:
            _check_float_array(key, state[key], (n_columns,))
    if "scale_" in state and not np.all(state["scale_"] > 0):
        raise _invalid("scale_", "must be positive")


def _check_latent_attributes(state: dict[str, Any], module: dict[str, Any]) -> None:
    """Check the counters, per-component statistics and class labels."""
    for key in ("n_iter_", "n_samples_seen_"):
        # partial_fit counts on: n_iter_ sets the KL warm-up of the next batch.
        if key in state:
            _check_int(key, state[key], 0)
    n_components = module["n_components"]
    for key in ("kl_per_component_", "explained_variance_"):
        value = state.get(key)
        if value is None:
            continue
        if not _is_float_array(value, (n_components,)):
            raise _invalid(
                key,
                f"must be a float array of shape ({n_components},), got "
                f"{_describe(value)}",
            )
        # All NaN for a fit without rows of weight; otherwise finite, >= 0.
        # >= 0 up to rounding: a collapsed dimension's KL may come out as -1e-17.
        if not (np.isnan(value).all() or np.all(np.isfinite(value) & (value > -1e-9))):
            raise _invalid(key, "must hold finite values >= 0")
    target = module.get("target")
    classes = state.get("classes_")
    if target is None or target["kind"] != "classes":
        if classes is not None:
            raise _invalid("classes_", "must be None: the model has no class labels")
        return
    n_classes = target["n_outputs"]
    if not (isinstance(classes, np.ndarray) and classes.shape == (n_classes,)):
        raise _invalid(
            "classes_",
            f"must be an array of the model's {n_classes} class labels, got "
            f"{_describe(classes)}",
        )
    # fit sorts the labels: swapped ones would draw rows of the wrong class.
    if not (_unique(classes.tolist()) and _ascending(classes.tolist())):
        raise _invalid(
            "classes_",
            f"must be unique and in sorted order, as fit leaves them, got "
            f"{_show(classes.tolist())}",
        )


def _check_holes(data: Any, n_columns: int, n_components: int) -> None:
    """Check the model of which entries are missing (``_holes.hole_model``)."""
    _check_keys("_holes", data, HOLE_KEYS)
    _check_float_array("_holes['rate']", data["rate"], (n_columns,))
    if not np.all((data["rate"] >= 0) & (data["rate"] <= 1)):
        raise _invalid("_holes['rate']", "must hold shares between 0 and 1")
    _check_float_array("_holes['coef']", data["coef"], (n_columns, n_components))
    _check_float_array("_holes['intercept']", data["intercept"], (n_columns,))
    if not (_is_finite(data["count"]) and data["count"] >= 0):
        got = _show(data["count"])
        raise _invalid("_holes['count']", f"must be a finite number >= 0, got {got}")
    if "pvalue" in data:  # absent: saved before the regressions were tested
        _check_float_array("_holes['pvalue']", data["pvalue"], (n_columns,))
        if not np.all((data["pvalue"] >= 0) & (data["pvalue"] <= 1)):
            raise _invalid("_holes['pvalue']", "must hold p-values between 0 and 1")


# -- partial_fit's training state -----------------------------------------------------
def _check_stream(data: Any, module: VAE) -> None:
    """Check the optimizer's state: one group over the parameters, finite moments."""
    _check_keys("_stream", data, STREAM_KEYS)
    parameters = list(module.named_parameters())
    groups = data["param_groups"]
    if not (isinstance(groups, list) and len(groups) == 1):
        raise _invalid("_stream.param_groups", "must be a list of one group")
    group = groups[0]
    _check_keys("_stream.param_groups[0]", group, ("params", "lr", "betas", "eps"))
    if not _same(group["params"], range(len(parameters))):
        raise _invalid(
            "_stream.param_groups[0]['params']",
            f"must list the model's {len(parameters)} parameters in order",
        )
    _check_hyperparameters(group)
    moments = data["moments"]
    if not isinstance(moments, list) or len(moments) > len(parameters):
        raise _invalid(
            "_stream.moments",
            f"must hold at most one entry per parameter ({len(parameters)}), got "
            f"{_describe(moments)}",
        )
    index = data.get("moment_index", list(range(len(moments))))  # older files
    if not (
        isinstance(index, list)
        and len(index) == len(moments)
        and all(_is_int(i) and 0 <= i < len(parameters) for i in index)
        and _unique(index)
    ):
        raise _invalid(
            "_stream.moment_index",
            f"must give each moment entry its parameter, distinct indices below "
            f"{len(parameters)}, got {_show(index)}",
        )
    for i, entry in zip(index, moments, strict=True):
        name, parameter = parameters[i]
        _check_moments(f"_stream.moments[{i}] ({name})", entry, parameter)
    _check_device("_stream.generator_device", data["generator_device"], DEVICE_TYPES)
    state = data["generator_state"]
    if not (
        isinstance(state, np.ndarray)
        and state.dtype == np.uint8
        and state.ndim == 1
        and state.size
    ):
        raise _invalid(
            "_stream.generator_state",
            f"must be a 1-D uint8 array, got {_describe(state)}",
        )


def _check_hyperparameters(group: dict[str, Any]) -> None:
    """Check Adam's settings: loading takes them from the file, not the parameters."""
    field = "_stream.param_groups[0]"
    for key in ("lr", "eps"):
        if not (_is_finite(group[key]) and group[key] > 0):
            raise _invalid(
                f"{field}[{key!r}]",
                f"must be positive and finite, got {_show(group[key])}",
            )
    betas = group["betas"]
    if not (
        isinstance(betas, list | tuple)
        and len(betas) == 2
        and all(_is_finite(b) and 0 <= b < 1 for b in betas)
    ):
        raise _invalid(
            f"{field}['betas']", f"must be two numbers in [0, 1), got {_show(betas)}"
        )
    decay = group.get("weight_decay", 0)
    if not (_is_finite(decay) and decay >= 0):
        raise _invalid(
            f"{field}['weight_decay']", f"must be finite and >= 0, got {_show(decay)}"
        )


def _check_moments(field: str, entry: Any, parameter: torch.Tensor) -> None:
    """Check Adam's state of one parameter: its step count and moment estimates."""
    _check_keys(field, entry, ("step", "exp_avg", "exp_avg_sq"))
    step = entry["step"]
    if isinstance(step, np.ndarray) and step.size == 1:
        step = step.item()
    if not (_is_finite(step) and step >= 0):
        raise _invalid(f"{field}['step']", f"must be a count >= 0, got {_show(step)}")
    for key, value in entry.items():
        if key != "step":
            _check_float_array(f"{field}[{key!r}]", value, tuple(parameter.shape))
    if np.any(entry["exp_avg_sq"] < 0):  # a mean of squares
        raise _invalid(f"{field}['exp_avg_sq']", "must be >= 0")


def _check_running_moments(data: Any, columns: list[dict[str, Any]]) -> None:
    """Check the column statistics over a stream's batches (None: older files).

    They become the codec's means and scales at the next batch: one value per
    continuous column, finite (standard deviations NaN for Bernoulli data, which
    keep none), and one weight per level of each discrete column.
    """
    if data is None:
        return
    field = "_stream.statistics"
    keys = ("count", "mean", "std", "low", "high", "integral", "levels")
    _check_keys(field, data, keys)
    n_cont = sum(column["kind"] == CONTINUOUS for column in columns)
    for key in ("count", "mean", "low", "high"):
        _check_float_array(f"{field}[{key!r}]", data[key], (n_cont,))
    std = data["std"]
    if not (
        _is_float_array(std, (n_cont,))
        and (np.isnan(std).all() or (np.isfinite(std).all() and np.all(std >= 0)))
    ):
        raise _invalid(
            f"{field}['std']",
            f"must be {n_cont} finite values >= 0 (NaN for Bernoulli data), got "
            f"{_describe(std)}",
        )
    if np.any(data["count"] < 0) or np.any(data["low"] > data["high"]):
        raise _invalid(field, "counts must be >= 0 and each low at most its high")
    integral = data["integral"]
    if not (
        isinstance(integral, np.ndarray)
        and integral.dtype == bool
        and integral.shape == (n_cont,)
    ):
        raise _invalid(
            f"{field}['integral']", f"must be {n_cont} bools, got {_describe(integral)}"
        )
    for key in ("at_low", "at_high"):  # absent before 0.1
        counts = data.get(key)
        if counts is not None and not (
            _is_float_array(counts, (n_cont,))
            and np.all(np.isfinite(counts) & (counts >= 0))
        ):
            raise _invalid(
                f"{field}[{key!r}]",
                f"must be {n_cont} finite weights >= 0, got {_describe(counts)}",
            )
    by_decimals = data.get("decimal_counts")  # absent before 0.1
    if by_decimals is not None and not (
        _is_float_array(by_decimals, (n_cont, MAX_DECIMALS + 2))
        and np.all(np.isfinite(by_decimals) & (by_decimals >= 0))
    ):
        raise _invalid(
            f"{field}['decimal_counts']",
            f"must be finite weights >= 0 of shape ({n_cont}, {MAX_DECIMALS + 2}), "
            f"got {_describe(by_decimals)}",
        )
    decimals = data.get("decimals")  # absent before 0.1
    if decimals is not None and not (
        isinstance(decimals, np.ndarray)
        and decimals.dtype.kind == "i"
        and decimals.shape == (n_cont,)
        and np.all((decimals >= NOT_RECORDED) & (decimals <= MAX_DECIMALS))
    ):
        raise _invalid(
            f"{field}['decimals']",
            f"must be {n_cont} ints from {NOT_RECORDED} to {MAX_DECIMALS}, got "
            f"{_describe(decimals)}",
        )
    discrete = {
        i: len(column["categories"])
        for i, column in enumerate(columns)
        if column["kind"] != CONTINUOUS
    }
    levels = data["levels"]
    if not (
        isinstance(levels, list)
        and all(isinstance(entry, list | tuple) and len(entry) == 2 for entry in levels)
        and sorted(_plain(i) for i, _ in levels) == sorted(discrete)
    ):
        raise _invalid(
            f"{field}['levels']",
            f"must pair each discrete column's position {sorted(discrete)} with "
            "its weight per level",
        )
    for i, counts in levels:
        _check_float_array(f"{field}['levels'][{i}]", counts, (discrete[int(i)],))
        if np.any(counts < 0):
            raise _invalid(f"{field}['levels'][{i}]", "weights must be >= 0")
