"""Output distributions p(x | z) of the decoder, one small class per family.

Each likelihood turns the decoder's raw output for a batch into per-entry
log-probabilities, a mean and samples. A likelihood that owns parameters (the
Gaussian's learned variance) is an ``nn.Module`` so that they train with the rest of
the model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_LOG_2PI = math.log(2.0 * math.pi)


class GaussianLikelihood(nn.Module):
    """Diagonal Gaussian with one learned variance per feature.

    The variance is homoscedastic: it depends on the feature, not on ``z``. That is
    the VAE analogue of probabilistic PCA's noise variance (per feature, as in factor
    analysis) and, unlike a variance predicted from ``z``, it cannot shrink to zero
    on a few training rows and blow up the likelihood.

    Parameters
    ----------
    n_features : int
        Number of features.
    min_variance : float
        Floor on each variance, in the units of the (standardised) data. It keeps
        the likelihood finite on constant columns.
    """

    def __init__(self, n_features: int, min_variance: float = 1e-3) -> None:
        super().__init__()
        self.min_log_var = math.log(min_variance)
        self.raw_log_var = nn.Parameter(torch.empty(n_features))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        # Variance 1: the variance of every standardised column.
        self.set_variance(1.0)

    @torch.no_grad()
    def set_variance(self, variance: float) -> None:
        """Set every feature's variance (floored at the minimum)."""
        log_var = max(math.log(variance), self.min_log_var + 1e-6)
        self.raw_log_var.fill_(math.log(math.expm1(log_var - self.min_log_var)))

    def log_var(self) -> torch.Tensor:
        # softplus keeps the variance above its floor with a smooth gradient.
        return self.min_log_var + F.softplus(self.raw_log_var)

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Per-entry log density, shape of ``x``."""
        log_var = self.log_var()
        return -0.5 * (_LOG_2PI + log_var + (x - out) ** 2 * torch.exp(-log_var))

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def sample(self, out: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(
            out.shape, generator=generator, device=out.device, dtype=out.dtype
        )
        return out + torch.exp(0.5 * self.log_var()) * noise


class BernoulliLikelihood(nn.Module):
    """Independent Bernoulli per feature, parametrised by logits.

    Working with logits (``binary_cross_entropy_with_logits``) rather than a sigmoid
    followed by a log keeps the loss finite when the decoder is confident.
    """

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Per-entry log-probability, shape of ``x``."""
        # log sigmoid(l) * x + log sigmoid(-l) * (1 - x) = x * l - softplus(l): the
        # stable form of the binary cross-entropy, and it broadcasts.
        return x * out - F.softplus(out)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out)

    def sample(self, out: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(out), generator=generator)


LIKELIHOODS = {"gaussian": GaussianLikelihood, "bernoulli": BernoulliLikelihood}


def make_likelihood(name: str, n_features: int) -> nn.Module:
    """Build the likelihood called ``name`` for ``n_features`` features."""
    if name == "gaussian":
        return GaussianLikelihood(n_features)
    return BernoulliLikelihood()
