"""Inference with a fitted model: plain functions over the module and the codec.

Every method of the estimators that reads a fitted model comes through here:
``transform`` and ``inverse_transform``, ``score_samples``, ``sample``, the
imputer's draws, dask partitions (which call the public methods), and a fit's
``kl_per_component_``, ``explained_variance_`` and ``noise_variance_``. Inference
runs in float64, without gradients, in chunks of rows whose size bounds the memory
(see ``CHUNK_ELEMENTS``), so that a row's result does not depend on the rows
around it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from ._likelihoods import GaussianLikelihood
from ._model import VAE, impute, kl_standard_normal, row_noise
from ._tabular import CONTINUOUS, TableCodec
from ._threads import sized_threads
from ._validation import validate_table

# Inference runs in chunks of rows sized so that the largest intermediate array
# (rows x noise draws x the widest layer of the network) holds at most this many
# float64 values: 16 MiB. A forward pass keeps a handful of such arrays alive, so
# transform, inverse_transform and score_samples stay within about 100 MiB above
# their input and output, whatever the number of rows.
CHUNK_ELEMENTS = 2**21
# Noise draws per row for the ELBO in ``score_samples``: 4 antithetic pairs, each
# row's own (``row_noise``). Measured against 512 draws on digits, breast_cancer
# and crashes: the mean score within 0.06 nats (each row's within 0.4-0.9), at a
# quarter of the cost of the 32 draws shared by every row used before, whose mean
# was off by up to 0.5 nats.
N_SCORE_DRAWS = 8
# Importance draws per row for the imputer's conditional mean: a scrambled Sobol
# sequence's normal scores (``impute_draws``), the same for every row. Measured on
# the 30%-missing cells of benchmarks/impute.py, one fitted model each: 64
# pseudo-random draws left chile's MNAR RMSE at 1.049 and titanic's at 1.244;
# 256 Sobol draws 1.015 and 1.086, 1024 pseudo-random ones 1.013 and 1.098.
N_IMPUTE_DRAWS = 256


def impute_draws(n_draws: int, n_components: int) -> torch.Tensor:
    """Return fixed standard normal draws (n_draws, n_components), float64.

    Quasi-random: a scrambled Sobol sequence (seed 0) through the normal
    quantile function, which covers the proposal more evenly than as many
    pseudo-random draws, so that the conditional mean's importance-sampling
    error is smaller for the same cost.
    """
    if n_components == 0:  # no latent: the weights are all equal
        return torch.zeros((n_draws, 0), dtype=torch.float64)
    sobol = torch.quasirandom.SobolEngine(n_components, scramble=True, seed=0)
    u = sobol.draw(n_draws, dtype=torch.float64)
    return torch.special.ndtri(u.clamp(1e-12, 1.0 - 1e-12))


def chunk_rows(module: torch.nn.Module, draws: int = 1, width: int = 1) -> int:
    """Rows per inference chunk: ``CHUNK_ELEMENTS`` over draws x widest layer."""
    widest = max(
        [width]
        + [
            max(layer.in_features, layer.out_features)
            for layer in module.modules()
            if isinstance(layer, torch.nn.Linear)
        ]
    )
    return max(1, CHUNK_ELEMENTS // (draws * widest))


def inference_threads(setting: Any, module: VAE, n_rows: int, draws: int = 1) -> Any:
    """Return the torch threads of inference on ``n_rows`` rows (see ``_threads``).

    One operation takes a chunk of rows, each with its ``draws``.
    """
    rows = min(n_rows, chunk_rows(module, draws)) * draws
    return sized_threads(setting, module, rows)


def apply_in_chunks(
    module: VAE,
    fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    X: np.ndarray,
    n_out: int,
    draws: int = 1,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Apply ``fn(x, mask)`` to float64 chunks of ``X`` on the module's device.

    ``draws`` is the number of noise draws ``fn`` pushes through the network for
    each row: chunks shrink with it (see ``CHUNK_ELEMENTS``). Returns (n_rows,
    n_out) float64.
    """
    device = next(module.parameters()).device
    n_rows = X.shape[0]
    chunk = chunk_rows(module, draws, max(X.shape[1], n_out))
    out = np.empty((n_rows, n_out))
    with torch.no_grad():
        for start in range(0, n_rows, chunk):
            part = slice(start, start + chunk)
            x = torch.tensor(X[part], dtype=torch.float64, device=device)
            m = None
            if mask is not None:
                m = torch.tensor(mask[part], dtype=torch.float64, device=device)
            out[part] = fn(x, m).cpu().numpy()
    return out


# -- from tables to the model's space ----------------------------------------------
def check_likelihood_range(
    likelihood: str, codec: TableCodec, values: np.ndarray, observed: np.ndarray
) -> None:
    """Raise a ValueError when a Bernoulli model gets values outside [0, 1]."""
    if likelihood != "bernoulli":
        return
    n_cont = codec.n_continuous
    seen = values[:, :n_cont][observed[:, :n_cont]]
    if seen.size and (seen.min() < 0 or seen.max() > 1):
        raise ValueError(
            'likelihood="bernoulli" needs values in [0, 1], got values in '
            f"[{seen.min():g}, {seen.max():g}]. Scale the data (e.g. MinMaxScaler) "
            'or use likelihood="gaussian".'
        )


def encode_checked(
    codec: TableCodec,
    X: Any,
    likelihood: str,
    handle_unknown: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode a validated table for a fitted model: (values, observed).

    The one path from rows to the model's space after fit, for training
    batches and inference alike: a categorical column whose values are not of
    its levels' kind (text for numbers or flags, numbers for text) is an
    error, since every entry would read as an unknown level (as missing, under
    ``handle_unknown="ignore"``), and the values must suit the likelihood
    (see ``check_likelihood_range``).
    """
    values, observed = codec.encode(X, handle_unknown, strict=True)
    check_likelihood_range(likelihood, codec, values, observed)
    return values, observed


def encode_input(
    estimator: Any, codec: TableCodec, X: Any
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Validate ``X`` against a fitted estimator and encode it.

    Returns the validated table, its encoded values and its observed mask; the
    estimator's ``likelihood`` and ``handle_unknown`` parameters decide the checks.
    """
    X = validate_table(estimator, X, reset=False)
    values, observed = encode_checked(
        codec, X, estimator.likelihood, estimator.handle_unknown
    )
    return X, values, observed


# -- the model's outputs --------------------------------------------------------------
def encode_mean(module: VAE, values: np.ndarray) -> np.ndarray:
    """Posterior means mu(x) of encoded rows, (n_rows, n_components)."""

    def mean(x: torch.Tensor, mask: None) -> torch.Tensor:
        return module.encode(x)[0]

    return apply_in_chunks(module, mean, values, module.encoder.mu.out_features)


def decode_mean(module: VAE, Z: np.ndarray, width: int) -> np.ndarray:
    """Mean of p(x|z) in the encoded space (standardised values, probabilities)."""

    def decode(z: torch.Tensor, mask: None) -> torch.Tensor:
        return module.likelihood.mean(module.decode(z))

    return apply_in_chunks(module, decode, Z, width)


def elbo_scores(
    module: VAE, codec: TableCodec, values: np.ndarray, observed: np.ndarray
) -> np.ndarray:
    """ELBO of each encoded row in the units of the data, in nats, (n_rows,).

    ``N_SCORE_DRAWS`` noise draws of each row's own (``row_noise``), so that a
    row's score is deterministic and does not depend on the other rows; the
    log-Jacobian of the standardisation brings it back to the data's units.
    """
    n_components = module.encoder.mu.out_features

    def elbo(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        noise = row_noise(x.cpu().numpy(), N_SCORE_DRAWS, n_components)
        eps = torch.from_numpy(noise).to(x.device)
        return module.elbo(x, eps, mask)[:, None]

    mask = None if observed.all() else observed
    per_row = apply_in_chunks(module, elbo, values, 1, draws=N_SCORE_DRAWS, mask=mask)
    return per_row[:, 0] - codec.log_jacobian(observed, values)


def latent_attributes(
    module: VAE, values: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Return ``kl_per_component_`` and ``explained_variance_`` over the rows.

    Per latent dimension: the mean KL(q(z|x) || N(0, I)) in nats, and the variance
    of the posterior mean (what ``transform`` returns) with n - 1 in the
    denominator, as PCA's ``explained_variance_``. ``weights`` weigh the rows.
    """
    n_components = module.encoder.mu.out_features

    def statistics(x: torch.Tensor, mask: None) -> torch.Tensor:
        mu, log_var = module.encode(x)
        return torch.cat([kl_standard_normal(mu, log_var), mu], dim=1)

    per_row = apply_in_chunks(module, statistics, values, 2 * n_components)
    kl, mu = per_row[:, :n_components], per_row[:, n_components:]
    w = np.ones(len(per_row)) if weights is None else np.asarray(weights, float)
    n_rows = np.count_nonzero(w)
    if n_rows == 0:
        nan = np.full(n_components, np.nan)
        return {"kl_per_component_": nan, "explained_variance_": nan.copy()}
    w = w / w.sum()
    mean = w @ mu
    variance = w @ np.square(mu - mean) * n_rows / max(n_rows - 1, 1)
    return {"kl_per_component_": w @ kl, "explained_variance_": variance}


def noise_variance(module: VAE, codec: TableCodec) -> np.ndarray:
    """Each column's decoder variance in the units of the data (NaN: not Gaussian).

    The Gaussian likelihood learns one variance per continuous column, in
    standardised units: times the column's scale squared it is the variance of
    x around the decoder's mean, as factor analysis's ``noise_variance_``. A
    near-constant column's is mixed with its wide tail's (see
    ``GaussianLikelihood.set_grid``).
    """
    out = np.full(len(codec.columns), np.nan)
    continuous = module.likelihood.continuous
    if codec.n_continuous and isinstance(continuous, GaussianLikelihood):
        with torch.no_grad():
            variance = continuous.variance().cpu().numpy()
        scale = codec.continuous_attribute("scale")
        out[codec.positions(CONTINUOUS)] = variance * np.square(scale)
    return out


def bounds_tensors(
    module: VAE, bounds: tuple[np.ndarray, np.ndarray] | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``TableCodec.encoded_range`` as tensors like the module's parameters."""
    if bounds is None:
        return None
    like = next(module.parameters())
    return tuple(
        torch.as_tensor(b, dtype=like.dtype, device=like.device) for b in bounds
    )


def sample_rows(
    module: VAE,
    n_samples: int,
    generator: torch.Generator,
    codes: torch.Tensor | None = None,
    noise: bool = True,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, torch.Tensor]:
    """Draw z from the prior (of the classes in ``codes``), then x or E[x|z].

    ``bounds`` (``TableCodec.encoded_range``) truncate the Gaussian draws to the
    training range. Returns encoded rows (n_samples, width), float64, and the
    draws of z (for ``_holes.draw_holes``). All of z is drawn first, then the
    rows are decoded and drawn in chunks (``chunk_rows``), so that memory
    beyond the output stays bounded however many rows are asked for; up to a
    chunk, the draws are those of one pass.
    """
    likelihood = module.likelihood
    limits = bounds_tensors(module, bounds) if noise else None
    with torch.no_grad():
        z = module.sample_prior(n_samples, generator, codes)
        rows = chunk_rows(module, width=likelihood.n_outputs)
        dtype = z.new_empty(0).cpu().numpy().dtype  # the module's
        x = np.empty((n_samples, likelihood.n_outputs), dtype=dtype)
        for start in range(0, n_samples, rows):
            out = module.decode(z[start : start + rows])
            if noise:
                part = likelihood.sample(out, generator, limits)
            else:
                part = likelihood.mean(out)
            x[start : start + rows] = part.cpu().numpy()
    return x, z


def impute_encoded(
    module: VAE,
    values: np.ndarray,
    observed: np.ndarray,
    generator: torch.Generator | None = None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    holes: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    missing: np.ndarray | None = None,
) -> np.ndarray:
    """Complete encoded rows from their observed entries (see ``_model.impute``).

    Without a ``generator``: the conditional mean, with ``N_IMPUTE_DRAWS`` fixed
    draws shared by every row, so that a row's value is reproducible and does not
    depend on the rows around it. With one: a draw from the conditional
    distribution, each row with draws of its own, Gaussian entries truncated to
    ``bounds`` (``TableCodec.encoded_range``) when given. ``holes(z, missing)``
    (log p(m | z), ``_holes.log_prob``) conditions on which entries are
    ``missing`` (n_rows, n_columns) boolean, by default those not ``observed``
    (pass the table's own holes where an entry the model reads as missing, a
    category it never saw, is there).
    """
    limits = bounds_tensors(module, bounds)
    device = next(module.parameters()).device
    n_components = module.encoder.mu.out_features
    eps = impute_draws(N_IMPUTE_DRAWS, n_components).to(device)

    n_columns = observed.shape[1]
    mask = observed
    if holes is not None:  # the holes travel with the mask, chunk by chunk
        gone = ~observed.astype(bool) if missing is None else missing
        mask = np.hstack([observed, gone]).astype(np.float64)

    def complete(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mask, gone = mask[:, :n_columns], mask[:, n_columns:] > 0.5
        selection = None if holes is None else lambda z: holes(z, gone)
        draws = eps
        if generator is not None:  # multiple imputation: each row its own draws
            draws = torch.randn(
                (N_IMPUTE_DRAWS, x.shape[0], n_components),
                generator=generator,
                device=x.device,
                dtype=x.dtype,
            )
        return impute(module, x, mask, draws, generator, limits, selection)

    width = module.likelihood.n_outputs
    return apply_in_chunks(
        module, complete, values, width, draws=N_IMPUTE_DRAWS, mask=mask
    )


def numpy_rng(generator: torch.Generator) -> np.random.Generator:
    """Return a NumPy generator seeded by the next draw of a torch one.

    For what is drawn after the model's draws (each generated value's
    number of decimals), from the same ``random_state``.
    """
    seed = torch.randint(
        2**62, (1,), generator=generator, device=generator.device
    ).item()
    return np.random.default_rng(seed)


def to_output(
    codec: TableCodec,
    encoded: np.ndarray,
    dtype: Any,
    samples: bool = False,
    index: pd.Index | None = None,
    rng: np.random.Generator | None = None,
) -> Any:
    """Turn encoded rows into the training table's form and dtypes.

    Float arrays take ``dtype``; a DataFrame takes ``index`` when given.
    ``samples`` and ``rng``: see ``TableCodec.decode``.
    """
    table = codec.decode(encoded, samples=samples, rng=rng)
    if isinstance(table, np.ndarray) and table.dtype.kind == "f":
        return table.astype(dtype, copy=False)
    if index is not None and isinstance(table, pd.DataFrame):
        table.index = index
    return table
