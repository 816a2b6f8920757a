"""skvae: variational autoencoders as scikit-learn transformers."""

from ._imputer import VAEImputer
from ._transformer import VAETransformer

__version__ = "0.1.0"

__all__ = ["VAEImputer", "VAETransformer", "__version__"]
