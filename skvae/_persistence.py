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

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._likelihoods import GaussianLikelihood, TableLikelihood
from ._model import VAE, ClassPrior, GaussianTarget
from ._streaming import Stream, new_stream
from ._tabular import Column, TableCodec
from ._version import __version__

# Raised when the layout of the saved state changes; loading a newer format fails
# with a clear error instead of a traceback from inside torch.
STATE_FORMAT = 2  # 2: the module may hold a target head (``target``)


class InconsistentVersionWarning(UserWarning):
    """A model is loaded by another skvae version than the one that saved it.

    As scikit-learn's own ``InconsistentVersionWarning``: the model may load and
    work, but results are not guaranteed. Refit it with the installed version, or
    install the version it was saved with.

    Parameters
    ----------
    estimator_name : str
        Class of the loaded estimator.
    current_skvae_version : str
        The installed skvae version.
    original_skvae_version : str
        The skvae version that saved the model.
    """

    def __init__(
        self,
        *,
        estimator_name: str,
        current_skvae_version: str,
        original_skvae_version: str,
    ) -> None:
        self.estimator_name = estimator_name
        self.current_skvae_version = current_skvae_version
        self.original_skvae_version = original_skvae_version

    def __str__(self) -> str:
        return (
            f"Loading {self.estimator_name} saved with skvae "
            f"{self.original_skvae_version} into skvae "
            f"{self.current_skvae_version}. It may load and work, but this is not "
            "guaranteed: refit it, or install the version it was saved with."
        )


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

    Raises a ValueError for a state this version cannot read, and warns with
    ``InconsistentVersionWarning`` when another skvae version saved it.
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
    if isinstance(state.get("device"), dict):
        state["device"] = torch.device(state["device"]["torch.device"])
    if "device_" in state:
        device = torch.device(state["device_"])
        if device.type == "cuda" and (
            not torch.cuda.is_available()
            or (device.index or 0) >= torch.cuda.device_count()
        ):
            device = torch.device("cpu")  # fitted on a GPU this machine lacks
        state["device_"] = device
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
    return state


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
        # Built on the meta device, so that loading draws nothing from torch's
        # global random state; every value comes from the saved weights.
        with torch.device("meta"):
            likelihood = TableLikelihood(
                data["n_continuous"],
                data["continuous"],
                data["n_binary"],
                tuple(data["cardinalities"]),
            )
            if data["min_variance"] is not None:
                likelihood.continuous.min_log_var = math.log(data["min_variance"])
            module = VAE(
                data["n_features"],
                data["n_components"],
                data["hidden_layer_sizes"],
                likelihood,
                _target_from_data(data.get("target"), data["n_components"]),
            )
        module = module.to_empty(device=device).double()
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
            )
        )
    return TableCodec(columns, data["is_frame"], data["standardize"])


# -- partial_fit's training state -----------------------------------------------------
def _stream_to_data(stream: Stream) -> dict[str, Any]:
    saved = stream.optimizer.state_dict()
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
        for group in saved["param_groups"]
    ]
    moments = [
        {name: value.detach().cpu().numpy().copy() for name, value in entry.items()}
        for _, entry in sorted(saved["state"].items())
    ]
    return {
        "param_groups": groups,
        "moments": moments,
        "generator_device": str(stream.generator.device),
        "generator_state": stream.generator.get_state().numpy().copy(),
    }


def _stream_from_data(
    data: dict[str, Any], state: dict[str, Any], estimator_name: str
) -> Stream:
    module = state["module_"]
    device = next(module.parameters()).device
    generator = torch.Generator(device=device)
    if data["generator_device"] == str(device):
        generator.set_state(torch.as_tensor(data["generator_state"]))
    else:  # another device's generator state does not transfer: a fresh seed
        generator.manual_seed(int(np.random.SeedSequence().generate_state(1)[0]))
    stream = new_stream(module, state["learning_rate"], generator)
    groups = [
        {k: tuple(v) if k == "betas" else v for k, v in group.items()}
        for group in data["param_groups"]
    ]
    moments = {
        i: {name: torch.as_tensor(np.asarray(value)) for name, value in entry.items()}
        for i, entry in enumerate(data["moments"])
    }
    try:
        # Adam casts its state to the parameters' dtype: float32, as in training.
        module.float()
        try:
            stream.optimizer.load_state_dict({"state": moments, "param_groups": groups})
        finally:
            module.double()
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"The saved {estimator_name}'s optimizer state could not be rebuilt "
            f"({type(exc).__name__}: {exc}); fit it again."
        ) from None
    return stream
