"""The VAE as a plain ``nn.Module``: no device, seeding or scikit-learn logic here.

Kingma & Welling (2014), "Auto-Encoding Variational Bayes": an encoder q(z|x) =
N(mu(x), diag sigma^2(x)), the reparameterisation z = mu + sigma * eps, a decoder
p(x|z), and the negative ELBO = -E_q[log p(x|z)] + KL(q(z|x) || N(0, I)).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from ._likelihoods import make_likelihood

# Bound on the encoder's log-variance: sigma stays within [e^-5, e^5], far beyond
# what a trained posterior uses, while exp() can neither overflow nor underflow.
LOG_VAR_BOUND = 10.0


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers with ReLU after each; empty for a single size."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """MLP with ReLU hidden layers and two linear heads: mu and log sigma^2."""

    def __init__(
        self, n_features: int, hidden_layer_sizes: Sequence[int], n_components: int
    ) -> None:
        super().__init__()
        sizes = (n_features, *hidden_layer_sizes)
        self.hidden = _mlp(sizes)
        self.mu = nn.Linear(sizes[-1], n_components)
        self.log_var = nn.Linear(sizes[-1], n_components)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(x)  # (B, H)
        # A soft bound keeps gradients alive where a hard clamp would cut them.
        log_var = LOG_VAR_BOUND * torch.tanh(self.log_var(h) / LOG_VAR_BOUND)
        return self.mu(h), log_var  # (B, k), (B, k)


class Decoder(nn.Module):
    """Mirror of the encoder: ReLU MLP from z to the likelihood's parameters."""

    def __init__(
        self, n_components: int, hidden_layer_sizes: Sequence[int], n_features: int
    ) -> None:
        super().__init__()
        sizes = (n_components, *reversed(hidden_layer_sizes))
        self.hidden = _mlp(sizes)
        self.out = nn.Linear(sizes[-1], n_features)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(z))  # (B, D)


class VAE(nn.Module):
    """Variational autoencoder with a Gaussian posterior and a standard normal prior.

    Parameters
    ----------
    n_features : int
        Width of the data.
    n_components : int
        Width of the latent space.
    hidden_layer_sizes : sequence of int
        Encoder hidden widths; the decoder mirrors them. Empty gives a linear VAE.
    likelihood : {"gaussian", "bernoulli"}
        Family of p(x | z).
    """

    def __init__(
        self,
        n_features: int,
        n_components: int,
        hidden_layer_sizes: Sequence[int],
        likelihood: str,
    ) -> None:
        super().__init__()
        self.encoder = Encoder(n_features, hidden_layer_sizes, n_components)
        self.decoder = Decoder(n_components, hidden_layer_sizes, n_features)
        self.likelihood = make_likelihood(likelihood, n_features)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor
    ) -> torch.Tensor:
        return mu + torch.exp(0.5 * log_var) * eps

    def loss_terms(
        self, x: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction NLL per row (B,) and KL per row and dimension (B, k)."""
        mu, log_var = self.encode(x)
        out = self.decode(self.reparameterize(mu, log_var, eps))
        nll = -self.likelihood.log_prob(x, out).sum(dim=1)
        return nll, kl_standard_normal(mu, log_var)

    def elbo(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """ELBO of each row (B,), averaged over the noise draws ``eps`` of shape (L, k).

        Every row uses the same L draws, so a row's value does not depend on which
        other rows share its batch.
        """
        mu, log_var = self.encode(x)  # (B, k)
        z = self.reparameterize(mu[None], log_var[None], eps[:, None, :])  # (L, B, k)
        out = self.decode(z)  # (L, B, D)
        log_lik = self.likelihood.log_prob(x[None], out).sum(dim=2).mean(dim=0)
        return log_lik - kl_standard_normal(mu, log_var).sum(dim=1)


def kl_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(log_var)) || N(0, I)) per dimension, in closed form.

    Kingma & Welling (2014), appendix B: -1/2 (1 + log sigma^2 - mu^2 - sigma^2).
    """
    return 0.5 * (mu.square() + torch.exp(log_var) - 1.0 - log_var)


@torch.no_grad()
def init_weights(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default ``nn.Linear`` initialisation, drawn from ``generator``.

    The model is built on the meta device and initialised here, so that building it
    neither reads nor advances torch's global random state.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            bound = 1.0 / math.sqrt(layer.in_features)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
        elif layer is not module and hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
