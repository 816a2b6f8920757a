"""skvae: variational autoencoders as scikit-learn transformers."""

from ._imputer import VAEImputer
from ._onnx import register_onnx_converter, to_onnx
from ._transformer import VAETransformer
from ._version import InconsistentVersionWarning, __version__

__all__ = [
    "InconsistentVersionWarning",
    "VAEImputer",
    "VAETransformer",
    "__version__",
    "register_onnx_converter",
    "to_onnx",
]
