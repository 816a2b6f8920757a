"""Output distributions p(x | z) of the decoder, one small class per family.

Each likelihood turns the decoder's raw output for a batch into per-entry
log-probabilities, a mean and samples. A likelihood that owns parameters (the
Gaussian's learned variance) is an ``nn.Module`` so that they train with the rest of
the model.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._tabular import censored_steps, ramp_form

_LOG_2PI = math.log(2.0 * math.pi)
# How far beyond a censored bound, in standard deviations, the location of a
# censored feature can go (see ``GaussianLikelihood.located``): the mass then
# holds all but Phi(-6) = 1e-9 of the probability. Unbounded, nothing stops a
# location beyond a mass from drifting away: on MNIST (k=20) a pixel 96% at 0
# reached -1,058 standard deviations, and a test image with ink there scored
# -5.8 million nats.
LOCATION_LIMIT = 6.0
# The sharpness of the smooth bound: softplus(4 t) / 4, which moves a location
# LOCATION_LIMIT sd inside the limit by 1e-11 sd.
LOCATION_SHARPNESS = 4.0
# A grid whose step is at most this share of the smallest standard deviation
# the model allows (its variance floor) is fine: a bin's log probability is
# the log density at its centre plus the log of its width, to within
# max(z^2, 1) (w / sd)^2 / 24 nats: at most 4e-6 within one sd, 4e-4 at
# z = 10 and 0.006 at z = 38 (z: the value's distance from the mean in sd;
# from sinh(u) / u <= exp(u^2 / 6) and Jensen's inequality). Such a feature
# (diamonds' price in whole dollars: 1/4000 of a standard deviation) takes the
# plain Gaussian's path, plus the log of its width.
FINE_GRID = 0.01


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
        self.grid: tuple[np.ndarray, ...] | None = None
        # indices of the features that are not plain Gaussians (None: none); a
        # fine grid (FINE_GRID) is not among them, though ``width`` keeps its step
        self.gridded: torch.Tensor | None = None
        # log of each fine grid's width, 0 elsewhere (None: no fine grid)
        self.fine_log_width: torch.Tensor | None = None
        # The columns' grid (see ``set_grid``), in the model's units. Not saved
        # with the weights: it is read off the column codec whenever the two
        # are paired (a fit, each batch of a stream, a load).
        self.register_buffer("width", torch.zeros(n_features), persistent=False)
        self.register_buffer(
            "low", torch.full((n_features,), -torch.inf), persistent=False
        )
        self.register_buffer(
            "high", torch.full((n_features,), torch.inf), persistent=False
        )
        self.register_buffer("tail_share", torch.zeros(n_features), persistent=False)
        self.register_buffer("tail_sd", torch.ones(n_features), persistent=False)
        self.tailed: torch.Tensor | None = None  # features with a tail (None: none)
        self.reset_parameters()

    @torch.no_grad()
    def set_grid(
        self,
        width: Any,
        low: Any,
        high: Any,
        knots: Any = None,
        tail_share: Any = 0.0,
        tail_sd: Any = 1.0,
    ) -> None:
        """Set each feature's family by its grid (numbers in the model's units).

        ``width`` > 0: the feature's values lie on a grid of that step (whole
        numbers, a recorded precision), and an entry's probability is its bin's,
        [x - width/2, x + width/2], under the Gaussian (a discretised Gaussian);
        on a fine grid (``FINE_GRID``), the density times the width.
        A finite ``low`` (``high``) is a point mass: every value at or below
        (above) it is the bound, and its probability is the Gaussian's mass
        beyond the bound's edge (censoring, as in a Tobit model). A feature with
        width 0 and infinite bounds keeps the Gaussian density.

        ``knots`` (n_features, 2, K), NaN for the features without one: a
        feature's increasing piecewise-linear map from the data's (standardised)
        units, row 0, to the model's, row 1 (normal scores, see
        ``TableCodec.padded_knots``). The model's values are the mapped ones;
        a mapped feature's ``width`` is in the data's units, and its bins are
        mapped through the map; ``mean`` is then the mean in the data's units,
        mapped.

        ``tail_share`` > 0: the feature's entries come from a mixture, with
        that weight on a second Gaussian of the same mean and standard
        deviation ``tail_sd`` (fixed, in the model's units) and the rest on the
        learnt one: a contaminated Gaussian, for near-constant columns whose
        learnt variance shrinks to the few training values off their mode (see
        ``TableCodec.likelihood_grid``). Grids, masses and maps apply to both.
        """
        n = self.raw_log_var.shape[0]
        grid = tuple(
            np.broadcast_to(
                np.asarray(v.cpu() if torch.is_tensor(v) else v, np.float64), (n,)
            ).copy()
            for v in (width, low, high, tail_share, tail_sd)
        )
        if knots is not None:
            knots = np.asarray(knots, np.float64)
            if np.isnan(knots[:, 0, 0]).all():
                knots = None
        self.grid = (*grid[:3], knots, *grid[3:])
        self._fill_grid()

    def _fill_grid(self) -> None:
        # From the float64 numbers, so that a float32 model converted to float64
        # holds the grid a float64 model was given (not its float32 rounding).
        with torch.no_grad():
            names = ("width", "low", "high", None, "tail_share", "tail_sd")
            for name, value in zip(names, self.grid, strict=True):
                if name is not None:
                    buffer = getattr(self, name)
                    buffer.copy_(torch.as_tensor(value, dtype=buffer.dtype))
        # Which features leave the plain Gaussian, decided here once rather
        # than read back from the device at every step of training.
        width, low, high, knots, share, _ = self.grid
        unmapped = (
            np.ones(len(width), bool) if knots is None else np.isnan(knots[:, 0, 0])
        )
        fine = (
            (width > 0)
            & (width <= FINE_GRID * math.exp(0.5 * self.min_log_var))
            & np.isinf(low)
            & np.isinf(high)
            & unmapped
        )
        self.fine_log_width = None
        if fine.any():
            log_width = np.log(np.where(fine, width, 1.0))  # 0 off the fine grids
            self.fine_log_width = torch.as_tensor(
                log_width, dtype=self.width.dtype, device=self.width.device
            )
            width = np.where(fine, 0.0, width)
        plain = (width == 0) & np.isinf(low) & np.isinf(high)
        self.censored = bool(np.isfinite(low).any() or np.isfinite(high).any())
        # Read once here, not at every step: which sides have masses.
        self.sides = mass_sides(self.low, self.high) if self.censored else None
        device, dtype = self.width.device, self.width.dtype
        self.tailed = self.tail_index = None
        if (share > 0).any():
            self.tailed = torch.as_tensor(share > 0, device=device)
            # The tailed features, and which of them are gridded: their
            # positions among the tailed ones and among the gridded ones.
            tail = np.flatnonzero(share > 0)
            in_tail = np.flatnonzero(~plain[tail])
            in_grid = np.searchsorted(np.flatnonzero(~plain), tail[in_tail])
            self.tail_index = (
                torch.as_tensor(tail, device=device),
                torch.as_tensor(in_tail, device=device) if len(in_tail) else None,
                torch.as_tensor(in_grid, device=device),
            )
        # Some features at point masses and none with bins (image pixels at 0
        # and 1): ``masses_log_prob`` computes ``log_prob``. A map changes
        # nothing there: without bins, log_prob is taken in the model's units
        # (the codec adds the map's Jacobian).
        self.masses_only = bool((width == 0).all()) and not plain.all()
        self.gridded = None
        if not plain.all():
            self.gridded = torch.as_tensor(np.flatnonzero(~plain), device=device)
        self.mapped = self.mapped_grid = None
        if knots is None:
            return
        rows = np.flatnonzero(~np.isnan(knots[:, 0, 0]))
        size = knots.shape[2]
        x, z = np.empty((len(rows), size)), np.empty((len(rows), size))
        left, change = np.zeros(len(rows)), np.zeros((len(rows), size))
        jump, steps = np.zeros(len(rows)), np.zeros((len(rows), size))
        for r, row in enumerate(rows):
            xr, zr = knots[row, 0], knots[row, 1]
            k = int((~np.isnan(xr)).sum())
            xr, zr = xr[:k], zr[:k]
            # Padded with knots on the last segment's line, which change no
            # value: the map goes on along it beyond its last knot.
            pad = np.arange(1, size - k + 1)
            x[r] = np.concatenate([xr, xr[-1] + (xr[-1] - xr[-2]) * pad])
            z[r] = np.concatenate([zr, zr[-1] + (zr[-1] - zr[-2]) * pad])
            # The inverse map (scores to values) as a sum of ramps, for the
            # mean, flat beyond a censored bound (its values are the bound's).
            _, _, left[r], change[r, :k] = ramp_form(
                zr, xr, np.isfinite(low[row]), np.isfinite(high[row])
            )
            jump[r], steps[r, :k] = censored_steps(zr, xr, low[row], high[row])
        self.mapped = torch.as_tensor(rows, device=device)
        self.knot_x = torch.as_tensor(x, dtype=dtype, device=device)
        self.knot_z = torch.as_tensor(z, dtype=dtype, device=device)
        self.ramps = tuple(
            torch.as_tensor(v, dtype=dtype, device=device)
            for v in (x[:, 0], z[:, 0], left, change, jump, steps)
        )
        # The mapped features on a grid: positions among the gridded ones,
        # and rows among the mapped ones.
        gridded = np.flatnonzero(~plain)
        on_grid = np.flatnonzero(width[rows] > 0)
        if len(on_grid):
            self.mapped_grid = (
                torch.as_tensor(np.searchsorted(gridded, rows[on_grid]), device=device),
                torch.as_tensor(on_grid, device=device),
            )

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "sides" not in state and state.get("grid") is not None:
            self._fill_grid()  # a module pickled before ``sides``: read them

    def _apply(self, fn: Any, recurse: bool = True) -> GaussianLikelihood:
        out = super()._apply(fn, recurse)
        if getattr(self, "grid", None) is not None:
            self._fill_grid()
        return out

    @torch.no_grad()
    def reset_parameters(self) -> None:
        # Variance 1: the variance of every standardised column; every feature a
        # plain Gaussian (the buffers of a model built on the meta device come
        # uninitialised).
        self.set_variance(1.0)
        self.set_grid(0.0, -torch.inf, torch.inf)

    @torch.no_grad()
    def set_variance(self, variance: float) -> None:
        """Set every feature's variance (floored at the minimum)."""
        log_var = max(math.log(variance), self.min_log_var + 1e-6)
        self.raw_log_var.fill_(math.log(math.expm1(log_var - self.min_log_var)))

    @torch.no_grad()
    def scale_variance(self, factor: torch.Tensor) -> None:
        """Multiply each feature's variance by ``factor`` (floored at the minimum)."""
        floor = self.min_log_var + 1e-6
        log_var = torch.clamp(self.log_var() + torch.log(factor), min=floor)
        self.raw_log_var.copy_(torch.log(torch.expm1(log_var - self.min_log_var)))

    def log_var(self) -> torch.Tensor:
        # softplus keeps the variance above its floor with a smooth gradient.
        return self.min_log_var + F.softplus(self.raw_log_var)

    def tail_log_var(self) -> torch.Tensor:
        """Each feature's log-variance in the wide tail (the learnt one: none)."""
        wide = 2.0 * torch.log(self.tail_sd)
        return torch.where(self.tailed, wide, self.log_var())

    def variance(self) -> torch.Tensor:
        """Each feature's variance around the mean of a plain Gaussian feature.

        The learnt variance, mixed with the tail's where there is one.
        """
        variance = torch.exp(self.log_var())
        if self.tailed is None:
            return variance
        share = self.tail_share
        return (1.0 - share) * variance + share * self.tail_sd.square()

    def located(self, out: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """Return the decoder's locations, kept near each censored bound.

        A censored feature's location goes at most ``LOCATION_LIMIT``
        standard deviations beyond its mass, smoothly: beyond a low mass,
        ``lim + sd * softplus((out - lim) / sd)`` with
        ``lim = low - LOCATION_LIMIT * sd`` (mirrored at a high mass), and
        softplus of sharpness ``LOCATION_SHARPNESS``, which moves a location
        at the bound by 1e-11 sd. Elsewhere it is ``out``.
        """
        if not self.censored:
            return out
        sd = torch.exp(0.5 * log_var)
        sides, beta = self.sides, LOCATION_SHARPNESS
        if sides.lows is not None:
            lim_low = sides.low0 - LOCATION_LIMIT * sd
            above = lim_low + sd * F.softplus((out - lim_low) / sd, beta)
            out = torch.where(sides.lows, above, out)
        if sides.highs is not None:
            lim_high = sides.high0 + LOCATION_LIMIT * sd
            below = lim_high - sd * F.softplus((lim_high - out) / sd, beta)
            out = torch.where(sides.highs, below, out)
        return out

    def squared_residuals(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Return the expected (x - location)^2 per entry, for the EM of variances.

        (x - location)^2 off the masses, with the locations ``log_prob`` uses
        (``located``); at a point mass, where x stands for every value beyond
        the bound, its expectation under the censored Gaussian (the E step of
        a Tobit model): sd^2 (1 - b phi(b) / Phi(b)), b the bound's distance
        beyond the location in sd. NaN at both masses of a constant feature,
        which tell nothing. The narrow part's, for tailed features too.
        """
        log_var = self.log_var()
        out = self.located(out, log_var)
        squared = (x - out).square()
        if not self.censored:
            return squared
        sd = torch.exp(0.5 * log_var)
        low, high = _finite(self.low), _finite(self.high)
        at_low, at_high = x <= self.low, x >= self.high
        b = torch.where(at_low, low - out, out - high) / sd
        expected = sd.square() * (1.0 - b * _mills_ratio(b, torch.special.log_ndtr(b)))
        squared = torch.where(at_low | at_high, expected, squared)
        return torch.where(at_low & at_high, torch.nan, squared)

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Per-entry log-probability, shape of ``x`` and ``out`` broadcast.

        A log density for plain Gaussian features and for values off a point
        mass; a log probability on a grid and at a point mass (see
        ``set_grid``); the mixture of the two Gaussians where there is a tail.
        On a fine grid (``FINE_GRID``), the density times the bin's width.
        """
        log_p = self._log_prob(x, out)
        if self.fine_log_width is not None:
            log_p = log_p + self.fine_log_width
        return log_p

    def _log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        log_var = self.log_var()
        if self.masses_only:
            tail = None
            if self.tailed is not None:
                index = self.tail_index[0]
                tail = (index, self.tail_share[index], self.tail_sd[index])
            return masses_log_prob(
                x, out, log_var, self.low, self.high, tail, self.sides
            )
        out = self.located(out, log_var)
        log_p = _log_density(x, out, log_var)
        index, edges = self.gridded, None
        if index is not None:
            edges = self._mapped_edges(x[..., index])
            xb, ob = torch.broadcast_tensors(x, out)
            if edges is not None:
                shape = xb[..., index].shape
                edges = tuple(torch.broadcast_to(e, shape) for e in edges)
            mass = self._interval(xb, ob, log_var, index, index, log_p, edges)
            log_p = log_p.index_copy(-1, index, mass)
        if self.tailed is None:
            return log_p
        # The wide part, on the features with a tail only.
        tail, in_tail, in_grid = self.tail_index
        wide_log_var = 2.0 * torch.log(self.tail_sd[tail])
        xt, ot = x[..., tail], out[..., tail]
        wide = _log_density(xt, ot, wide_log_var)
        if in_tail is not None:
            xb, ob = torch.broadcast_tensors(xt, ot)
            if edges is not None:
                edges = tuple(e[..., in_grid] for e in edges)
            mass = self._interval(
                xb, ob, wide_log_var, in_tail, tail[in_tail], wide, edges
            )
            wide = wide.index_copy(-1, in_tail, mass)
        share = self.tail_share[tail]
        mixed = torch.logaddexp(
            log_p[..., tail] + torch.log1p(-share), wide + torch.log(share)
        )
        return log_p.index_copy(-1, tail, mixed)

    def _interval(
        self,
        x: torch.Tensor,
        out: torch.Tensor,
        log_var: torch.Tensor,
        columns: torch.Tensor,
        features: torch.Tensor,
        density: torch.Tensor,
        edges: tuple[torch.Tensor, ...] | None,
    ) -> torch.Tensor:
        """``interval_log_prob`` of the ``columns`` of ``x`` (features ``features``).

        ``x``, ``out``, ``log_var`` and ``density`` hold a subset of the
        features, of which ``columns`` are gridded; ``features`` are their
        indices among all the features (for the grid).
        """
        return interval_log_prob(
            x[..., columns],
            out[..., columns],
            torch.exp(0.5 * log_var[columns]),
            self.width[features],
            self.low[features],
            self.high[features],
            density[..., columns],
            edges,
        )

    def _mapped_edges(self, x: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """Bin edges and widths of the gridded features ``x``, or None.

        A mapped feature's bin is its value's bin in the data's units,
        [v - width/2, v + width/2], mapped: its edges in the model's units.
        The other features' bins are x -+ width/2.
        """
        mapped_grid = getattr(self, "mapped_grid", None)
        if mapped_grid is None:
            return None
        index = self.gridded
        half = 0.5 * self.width[index]
        low, high = self.low[index], self.high[index]
        # at a mass: the bound's bin (see ``interval_log_prob``)
        x = torch.where(x >= high, high, torch.where(x <= low, low, x))
        lower, upper = x - half, x + half
        position, row = mapped_grid
        knot_x, knot_z = self.knot_x[row], self.knot_z[row]
        v = piecewise_linear(x[..., position], knot_z, knot_x)
        _, rate = piecewise_linear(v, knot_x, knot_z, slope=True)
        width = (2 * half).expand_as(lower)
        half = half[position]
        lower = lower.index_copy(
            -1, position, piecewise_linear(v - half, knot_x, knot_z)
        )
        upper = upper.index_copy(
            -1, position, piecewise_linear(v + half, knot_x, knot_z)
        )
        # The bin's width in the model's units from the slope, not from the
        # difference of its edges, which a narrow bin loses to rounding.
        width = width.index_copy(-1, position, rate * (2 * half))
        return lower, upper, width

    def mean(self, out: torch.Tensor, scores: bool = True) -> torch.Tensor:
        """Return the expected value of each entry.

        ``out`` for a plain Gaussian; for a feature censored at a point mass, the
        censored Gaussian's mean (the mass's value times its probability, plus
        the mean of the part between the masses), with a grid's edge bins
        taken whole (see ``set_grid``). A mapped feature's mean is taken in the
        data's units and mapped to the model's, so that the codec's inverse
        map gives the data's mean. With a tail, the two Gaussians' means,
        weighted (in the data's units). ``scores=False`` leaves the mapped
        features' means in the data's (standardised) units, where means can be
        averaged; ``to_scores`` maps them afterwards.
        """
        mapped = getattr(self, "mapped", None)
        log_var = self.log_var()
        out = self.located(out, log_var)
        means = self._mean(out, log_var)
        if self.tailed is not None and (
            self.gridded is not None or mapped is not None
        ):  # a plain Gaussian's mean is ``out`` in both parts
            share = self.tail_share
            wide = self._mean(out, self.tail_log_var())
            means = torch.where(
                self.tailed, (1.0 - share) * means + share * wide, means
            )
        return self.to_scores(means) if scores else means

    def to_scores(self, means: torch.Tensor) -> torch.Tensor:
        """Map the mapped features of means in the data's units to the model's."""
        mapped = getattr(self, "mapped", None)
        if mapped is None:
            return means
        scores = piecewise_linear(means[..., mapped], self.knot_x, self.knot_z)
        return means.index_copy(-1, mapped, scores)

    def _mean(self, out: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """Return the means with this variance (mapped features: data units)."""
        if getattr(self, "mapped", None) is not None:
            return self._mapped_mean(out, self._censored_mean(out, log_var), log_var)
        return self._censored_mean(out, log_var)

    def _censored_mean(self, out: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        index = self.gridded
        if index is None:
            return out
        sd = torch.exp(0.5 * log_var[index])
        half = 0.5 * self.width[index]
        low, high = self.low[index], self.high[index]
        mu = out[..., index]
        a = torch.where(torch.isinf(low), low, (low + half - mu) / sd)
        b = torch.where(torch.isinf(high), high, (high - half - mu) / sd)
        p_a, p_b = torch.special.ndtr(a), torch.special.ndtr(b)
        density = torch.exp(-0.5 * _LOG_2PI - 0.5 * torch.nan_to_num(a * a, posinf=0.0))
        density_b = torch.exp(
            -0.5 * _LOG_2PI - 0.5 * torch.nan_to_num(b * b, posinf=0.0)
        )
        density = torch.where(torch.isinf(a), 0.0, density)
        density_b = torch.where(torch.isinf(b), 0.0, density_b)
        inside = mu * (p_b - p_a) + sd * (density - density_b)
        at_low = torch.where(torch.isinf(low), 0.0, low * p_a)
        at_high = torch.where(torch.isinf(high), 0.0, high * (1.0 - p_b))
        return out.index_copy(-1, index, at_low + inside + at_high)

    def _mapped_mean(
        self, out: torch.Tensor, means: torch.Tensor, log_var: torch.Tensor
    ) -> torch.Tensor:
        """Return the mapped features' mean in the data's (standardised) units.

        E[g(Z)] for Z ~ N(out, sd^2) and g the inverse map, the bound's value
        beyond a censored bound: with g as a sum of ramps and steps (see
        ``ramp_form`` and ``censored_steps``) it is exact, from
        E[max(Z - t, 0)] = sd (d Phi(d) + phi(d)) and P(Z > t) = Phi(d),
        d = (mu - t) / sd.
        """
        index = self.mapped
        x0, z0, left, change, jump, steps = self.ramps
        mu = out[..., index]
        sd = torch.exp(0.5 * log_var[index])
        d = (mu[..., None] - self.knot_z) / sd[:, None]
        cdf = torch.special.ndtr(d)
        ramp = sd[:, None] * (d * cdf + torch.exp(-0.5 * (_LOG_2PI + d * d)))
        value = (
            x0
            + jump
            + left * (mu - z0)
            + (change * ramp).sum(dim=-1)
            + (steps * cdf).sum(dim=-1)
        )
        return means.index_copy(-1, index, value)

    def sample(
        self,
        out: torch.Tensor,
        generator: torch.Generator,
        bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Draw x ~ N(out, variance); within ``bounds`` (low, high) if given.

        With bounds, each entry is drawn from its Gaussian truncated to the
        interval (by the inverse CDF), so that no mass piles up at the bounds as
        it would under clipping; see ``truncated_normal``. Where there is a
        tail, each entry first draws its Gaussian (within ``bounds``: in
        proportion to each one's weight times its mass inside them).
        """
        out = self.located(out, self.log_var())
        sd = torch.exp(0.5 * self.log_var())
        if self.tailed is not None:
            sd = self._drawn_sd(out, sd, generator, bounds)
        if bounds is None:
            noise = torch.randn(
                out.shape, generator=generator, device=out.device, dtype=out.dtype
            )
            return out + sd * noise
        low, high = bounds
        uniform = torch.rand(
            out.shape, generator=generator, device=out.device, dtype=out.dtype
        )
        return out + sd * truncated_normal((low - out) / sd, (high - out) / sd, uniform)

    def _drawn_sd(
        self,
        out: torch.Tensor,
        sd: torch.Tensor,
        generator: torch.Generator,
        bounds: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> torch.Tensor:
        """Each entry's standard deviation, drawn from the tail's mixture."""
        share = self.tail_share.expand_as(out)
        wide = self.tail_sd
        if bounds is not None:
            low, high = bounds

            def mass(s: torch.Tensor) -> torch.Tensor:
                p = torch.special.ndtr((high - out) / s)
                return p - torch.special.ndtr((low - out) / s)

            weighted = share * mass(wide)
            total = weighted + (1.0 - share) * mass(sd)
            share = torch.where(total > 0, weighted / total, share)
        uniform = torch.rand(
            out.shape, generator=generator, device=out.device, dtype=out.dtype
        )
        return torch.where(self.tailed & (uniform < share), wide, sd)


def _log_density(
    x: torch.Tensor, out: torch.Tensor, log_var: torch.Tensor
) -> torch.Tensor:
    """Log density of N(out, exp(log_var)) at ``x``, broadcast."""
    return -0.5 * (_LOG_2PI + log_var + (x - out) ** 2 * torch.exp(-log_var))


def interval_log_prob(
    x: torch.Tensor,
    mean: torch.Tensor,
    sd: torch.Tensor,
    width: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    density: torch.Tensor | None = None,
    edges: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Log-probability of each entry under N(mean, sd^2) on its grid and masses.

    Each entry stands for the interval [x - width/2, x + width/2] (or
    ``edges``: a lower edge, an upper edge and a width per entry), opened to
    -inf at or below ``low`` (to +inf at or above ``high``), the edge's half
    bin included: a point mass censors the values beyond it. Where the
    interval is a single point (width 0, off the masses) the result is the log
    density (``density`` if given). The probability of an interval,
    Phi(b) - Phi(a), is taken in the lower tail (mirrored when above 0) as
    log Phi(b) + log(-expm1(log Phi(a) - log Phi(b))), which keeps its
    relative precision 38 standard deviations out; a bin narrower than 1e-3
    standard deviations takes the density at its centre times its width (a
    relative error below 1e-7), as does a bin whose edges rounding merged.
    """
    half = 0.5 * width
    at_low = x <= low
    at_high = x >= high
    if edges is None:
        lower = torch.where(at_high, high, x) - half
        upper = torch.where(at_low, low, x) + half
    else:
        lower, upper, width = edges
    # Standardise finite edges, then open the censored sides: an infinity that
    # went through (edge - mean) / sd would send NaN into the gradients.
    a = (lower - mean) / sd
    b = (upper - mean) / sd
    a = torch.where(at_low, -torch.inf, a)
    b = torch.where(at_high, torch.inf, b)
    point = (width == 0) & ~at_low & ~at_high
    # A bin narrower than 1e-3 sd, or whose edges rounding has merged (a value
    # far larger than its bin, in float32), takes the density at its centre.
    small = (width < 1e-3 * sd) | (upper <= lower)
    narrow = ~point & ~at_low & ~at_high & small
    exact = ~point & ~narrow
    # Dummies where another branch is taken, so that no inf or NaN reaches a
    # gradient through torch.where.
    a = torch.where(exact, a, -1.0)
    b = torch.where(exact, b, 1.0)
    flip = (a + b) > 0
    lo, hi = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_hi = torch.special.log_ndtr(hi)
    gap = torch.special.log_ndtr(lo) - log_hi  # <= 0
    gap = torch.minimum(gap, torch.full_like(gap, -1e-30))  # a bin of no width
    interval = log_hi + torch.log(-torch.expm1(gap))
    if density is None:
        t = (x - mean) / sd
        density = -0.5 * (_LOG_2PI + t * t) - torch.log(sd)
    safe_width = torch.where(narrow, width, 1.0).expand_as(density)
    centred = density + torch.log(safe_width)
    return torch.where(exact, interval, torch.where(narrow, centred, density))


class MassSides(NamedTuple):
    """Which features have a point mass on which side, for ``masses_log_prob``.

    ``low0`` and ``high0``: the bounds, 0 where there is none; ``lows`` and
    ``highs``: the features with a low (high) mass, None where no feature has
    one, so that the work of a side none has is skipped; ``no_lows`` and
    ``no_highs``: their complements; ``constant``: whether some feature has
    both masses at one value (an entry can be at both).
    """

    low0: torch.Tensor
    high0: torch.Tensor
    lows: torch.Tensor | None
    highs: torch.Tensor | None
    no_lows: torch.Tensor | None
    no_highs: torch.Tensor | None
    constant: bool


def mass_sides(low: torch.Tensor, high: torch.Tensor) -> MassSides:
    """Return the ``MassSides`` of bounds ``low`` and ``high`` (reads them back)."""
    has_low, has_high = torch.isfinite(low), torch.isfinite(high)
    lows = has_low if bool(has_low.any()) else None
    highs = has_high if bool(has_high.any()) else None
    return MassSides(
        _finite(low),
        _finite(high),
        lows,
        highs,
        None if lows is None else ~lows,
        None if highs is None else ~highs,
        bool((has_low & has_high & (low >= high)).any()),
    )


def masses_log_prob(
    x: torch.Tensor,
    out: torch.Tensor,
    log_var: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    tail: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    sides: MassSides | None = None,
) -> torch.Tensor:
    """``GaussianLikelihood.log_prob`` where no feature has bins (maps or not).

    Gaussians N(out, exp(log_var)) censored at the finite ``low`` and ``high``
    (the probability beyond a mass at it; an entry at both masses of a
    constant feature has probability 1), locations kept near the masses
    (``GaussianLikelihood.located``) and, with ``tail`` (the features, their
    shares and standard deviations), mixed with a wide Gaussian there. The
    same numbers as the general path, with the derivatives
    written out and computed in the same pass: autograd takes that path as
    some hundred small operations, and on images (669 of MNIST's 784 pixels
    have a mass) they were most of a training step. ``sides``: the bounds'
    ``mass_sides``, computed once by the caller (None: here).
    """
    if sides is None:
        sides = mass_sides(low, high)
    if torch.is_grad_enabled() and (out.requires_grad or log_var.requires_grad):
        return _MassesLogProb.apply(x, out, log_var, low, high, tail, sides)
    return _masses_log_prob(x, out, log_var, low, high, tail, sides)[0]


class _MassesLogProb(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, *args: Any) -> torch.Tensor:
        log_p, d_out, d_log_var = _masses_log_prob(*args, derivatives=True)
        ctx.save_for_backward(d_out, d_log_var)
        ctx.out_shape = args[1].shape
        return log_p

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        d_out, d_log_var = ctx.saved_tensors
        n = d_log_var.shape[-1]
        grad_out = (grad * d_out).sum_to_size(ctx.out_shape)
        grad_log_var = (grad * d_log_var).reshape(-1, n).sum(0)
        return None, grad_out, grad_log_var, None, None, None, None


def _masses_log_prob(
    x: torch.Tensor,
    out: torch.Tensor,
    log_var: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    tail: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    sides: MassSides,
    derivatives: bool = False,
) -> tuple[torch.Tensor, ...]:
    """``masses_log_prob``, and with ``derivatives`` its derivatives by entry.

    Returns the log-probabilities and, with ``derivatives``, their derivatives
    with respect to ``out`` and to ``log_var`` (per entry, not yet summed).
    Each step is taken only for the sides some feature has a mass on: on small
    tables the number of operations, not their size, is the cost.
    """
    x, out = torch.broadcast_tensors(x, out)
    sd = torch.exp(0.5 * log_var)
    low0, high0, lows, highs = sides.low0, sides.high0, sides.lows, sides.highs
    # The location bound (``GaussianLikelihood.located``), d/d out and d/d sd
    # (None: 1 and 0, no bound on that side).
    lim, beta = LOCATION_LIMIT, LOCATION_SHARPNESS
    m, m_out, m_sd = out, None, None
    if lows is not None:
        floor = low0 - lim * sd
        u = (out - floor) / sd
        soft = F.softplus(u, beta)
        m = torch.where(lows, floor + sd * soft, out)
        if derivatives:
            slope = torch.sigmoid(beta * u)
            m_out = slope.masked_fill(sides.no_lows, 1.0)
            m_sd = (soft - lim + slope * (lim - u)).masked_fill(sides.no_lows, 0.0)
    if highs is not None:
        cap = high0 + lim * sd
        v = (cap - m) / sd
        soft = F.softplus(v, beta)
        m = torch.where(highs, cap - sd * soft, m)
        if derivatives:
            slope = torch.sigmoid(beta * v)
            through = slope.masked_fill(sides.no_highs, 1.0)
            d_sd = (lim - soft - slope * (lim - v)).masked_fill(sides.no_highs, 0.0)
            m_sd = d_sd if m_sd is None else d_sd + through * m_sd
            m_out = through if m_out is None else through * m_out
    at_low = None if lows is None else x <= low
    at_high = None if highs is None else x >= high
    if at_low is None or at_high is None:
        censored = at_high if at_low is None else at_low
        masses = (at_low, censored, None)
    else:
        censored = at_low | at_high
        masses = (at_low, censored, (at_low & at_high) if sides.constant else None)
    log_p, p_m, p_sd = _censored(x, m, sd, 0.5 * log_var, sides, masses, derivatives)
    if tail is not None:  # the mixture, on the features with a tail only
        index, share, tail_sd = tail
        x, m, narrow = x[..., index], m[..., index], log_p[..., index]
        masses = tuple(None if v is None else v[..., index] for v in masses)
        tail_sides = sides._replace(low0=low0[index], high0=high0[index])
        wide, w_m, _ = _censored(
            x, m, tail_sd, torch.log(tail_sd), tail_sides, masses, derivatives
        )
        narrow = narrow + torch.log1p(-share)
        mixed = torch.logaddexp(narrow, wide + torch.log(share))
        log_p = log_p.index_copy(-1, index, mixed)
        if derivatives:
            weight = torch.exp(narrow - mixed)  # the narrow part's share
            mix = weight * p_m[..., index] + (1.0 - weight) * w_m
            p_m = p_m.index_copy(-1, index, mix)
            p_sd = p_sd.index_copy(-1, index, weight * p_sd[..., index])
    if not derivatives:
        return (log_p,)
    d_out = p_m if m_out is None else p_m * m_out
    d_sd = p_sd if m_sd is None else p_sd + p_m * m_sd
    return log_p, d_out, d_sd * (0.5 * sd)


def _censored(
    x: torch.Tensor,
    m: torch.Tensor,
    sd: torch.Tensor,
    log_sd: torch.Tensor,
    sides: MassSides,
    masses: tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None],
    derivatives: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Log-probabilities under N(m, sd^2) censored at the masses, d/d m, d/d sd.

    ``masses``: the entries at the low mass (None: no feature has one), at
    either, and at both (None: none can be).
    """
    at_low, censored, both = masses
    t = (x - m) / sd
    density = -0.5 * (_LOG_2PI + t * t) - log_sd
    if sides.highs is None:
        beyond = (sides.low0 - m) / sd
    elif sides.lows is None:
        beyond = (m - sides.high0) / sd
    else:
        beyond = torch.where(at_low, sides.low0 - m, m - sides.high0) / sd
    tail = torch.special.log_ndtr(beyond)
    log_p = torch.where(censored, tail, density)
    if both is not None:
        log_p = log_p.masked_fill(both, 0.0)
    if not derivatives:
        return log_p, None, None
    ratio = _mills_ratio(beyond, tail) / sd  # d log Phi(b) / d b
    if sides.highs is None:
        towards = -ratio
    elif sides.lows is None:
        towards = ratio
    else:
        towards = torch.where(at_low, -ratio, ratio)
    d_m = torch.where(censored, towards, t / sd)
    d_sd = torch.where(censored, -ratio * beyond, (t * t - 1.0) / sd)
    if both is not None:
        d_m, d_sd = d_m.masked_fill(both, 0.0), d_sd.masked_fill(both, 0.0)
    return log_p, d_m, d_sd


def _finite(bound: torch.Tensor) -> torch.Tensor:
    """Return the bound with 0 where it is missing (infinite): no inf in arithmetic."""
    return torch.where(torch.isfinite(bound), bound, 0.0)


def _mills_ratio(b: torch.Tensor, log_cdf: torch.Tensor) -> torch.Tensor:
    """Return phi(b) / Phi(b) from ``log_cdf`` = log Phi(b), in logs: finite far out."""
    return torch.exp(-0.5 * (_LOG_2PI + b * b) - log_cdf)


def piecewise_linear(
    v: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor, slope: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Evaluate each feature's map through its knots, linear beyond the ends.

    ``v`` (..., m): values of m features; ``xp``, ``fp`` (m, K): each
    feature's knots, ``xp`` increasing along K. With ``slope``, also return
    the slope of each value's segment.
    """
    m, size = xp.shape
    flat = v.reshape(-1, m).transpose(0, 1).contiguous()
    i = torch.searchsorted(xp.contiguous(), flat).clamp(1, size - 1)
    x0, x1 = xp.gather(1, i - 1), xp.gather(1, i)
    f0, f1 = fp.gather(1, i - 1), fp.gather(1, i)
    rate = (f1 - f0) / (x1 - x0)
    out = (f0 + (flat - x0) * rate).transpose(0, 1).reshape(v.shape)
    if slope:
        return out, rate.transpose(0, 1).reshape(v.shape)
    return out


def truncated_normal(
    a: torch.Tensor, b: torch.Tensor, uniform: torch.Tensor
) -> torch.Tensor:
    """Draw standard normals truncated to [a, b], from uniform draws on (0, 1).

    The inverse CDF, Phi^-1(Phi(a) + u (Phi(b) - Phi(a))), computed in the lower
    tail (intervals above 0 are mirrored) where Phi keeps its relative precision.
    An interval beyond ~38 standard deviations, whose probability underflows,
    gives its bound nearer to 0.
    """
    flip = (a + b) > 0  # mirror: [a, b] -> [-b, -a]
    lo = torch.where(flip, -b, a)
    hi = torch.where(flip, -a, b)
    p_lo, p_hi = torch.special.ndtr(lo), torch.special.ndtr(hi)
    t = torch.special.ndtri(p_lo + uniform * (p_hi - p_lo))
    t = torch.where(p_hi > p_lo, t, hi)  # probability underflow: the nearer bound
    t = torch.minimum(torch.maximum(t, lo), hi)  # rounding at the ends
    return torch.where(flip, -t, t)


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

    def mean(self, out: torch.Tensor, scores: bool = True) -> torch.Tensor:
        return torch.sigmoid(out)

    def to_scores(self, means: torch.Tensor) -> torch.Tensor:
        return means

    def sample(self, out: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(out), generator=generator)


def _bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    return x * logits - F.softplus(logits)


class TableLikelihood(nn.Module):
    """One likelihood per column of a table, for the decoder's concatenated output.

    The decoder's output and the encoded data share one layout: ``n_continuous``
    continuous features (Gaussian with a learned variance, or Bernoulli on
    ``[0, 1]``), then ``n_binary`` binary columns (Bernoulli on logits), then one
    block of logits per categorical column (softmax). ``log_prob`` returns one
    value per *column*, so that a missing entry is dropped by a 0 in the mask, and
    the sum over columns is the log-likelihood of the row.

    Parameters
    ----------
    n_continuous : int
        Number of continuous features.
    continuous : {"gaussian", "bernoulli"}
        Family of the continuous features.
    n_binary : int
        Number of binary columns.
    cardinalities : sequence of int
        Number of levels of each categorical column.
    """

    def __init__(
        self,
        n_continuous: int,
        continuous: str = "gaussian",
        n_binary: int = 0,
        cardinalities: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        self.n_continuous = n_continuous
        self.n_binary = n_binary
        self.cardinalities = tuple(int(c) for c in cardinalities)
        self.continuous = (
            GaussianLikelihood(n_continuous)
            if continuous == "gaussian"
            else BernoulliLikelihood()
        )
        n_cat, width = len(self.cardinalities), max(self.cardinalities, default=0)
        # Categorical logits gathered into a padded (n_cat, width) grid, so that all
        # columns take one log_softmax whatever their number of levels.
        self.register_buffer("cat_index", torch.zeros(n_cat, width, dtype=torch.long))
        self.register_buffer("cat_valid", torch.zeros(n_cat, width, dtype=torch.bool))
        self.reset_parameters()

    @property
    def n_outputs(self) -> int:
        """Width of the decoder output and of the encoded data."""
        return self.n_continuous + self.n_binary + sum(self.cardinalities)

    @property
    def n_columns(self) -> int:
        """Number of table columns, the width of ``log_prob``'s output."""
        return self.n_continuous + self.n_binary + len(self.cardinalities)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        # Also (re)fills the index buffers, which a model built on the meta device
        # gets uninitialised.
        offset = 0
        for j, levels in enumerate(self.cardinalities):
            self.cat_index[j] = 0
            self.cat_valid[j] = False
            self.cat_index[j, :levels] = torch.arange(offset, offset + levels)
            self.cat_valid[j, :levels] = True
            offset += levels

    def set_variance(self, variance: float) -> None:
        """Set the variance of every Gaussian feature (floored at the minimum)."""
        if isinstance(self.continuous, GaussianLikelihood):
            self.continuous.set_variance(variance)

    def set_grid(self, *grid: Any) -> None:
        """Set the Gaussian features' grids, masses, maps and tails (its set_grid)."""
        if isinstance(self.continuous, GaussianLikelihood):
            self.continuous.set_grid(*grid)

    def _split(self, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        c, b = self.n_continuous, self.n_binary
        return t[..., :c], t[..., c : c + b], t[..., c + b :]

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Log-probability of each column, shape ``(..., n_columns)``.

        ``x`` and ``out`` broadcast against each other over the leading dimensions.
        """
        if self.n_continuous == self.n_outputs:  # no slicing for the common case
            return self.continuous.log_prob(x, out)
        x_cont, x_bin, x_cat = self._split(x)
        o_cont, o_bin, o_cat = self._split(out)
        parts = []
        if self.n_continuous:
            parts.append(self.continuous.log_prob(x_cont, o_cont))
        if self.n_binary:
            parts.append(_bernoulli_log_prob(x_bin, o_bin))
        if self.cardinalities:
            valid = self.cat_valid
            log_p = torch.log_softmax(
                o_cat[..., self.cat_index].masked_fill(~valid, -torch.inf), dim=-1
            ).masked_fill(~valid, 0.0)
            onehot = x_cat[..., self.cat_index] * valid
            parts.append((onehot * log_p).sum(dim=-1))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def mean(self, out: torch.Tensor, scores: bool = True) -> torch.Tensor:
        """Return the expected encoded row: means and (level) probabilities.

        ``scores=False``: mapped features in the data's units (see
        ``GaussianLikelihood.mean``), for averaging before ``to_scores``.
        """
        o_cont, o_bin, o_cat = self._split(out)
        parts = [self.continuous.mean(o_cont, scores), torch.sigmoid(o_bin)]
        if self.cardinalities:
            probs = self._probabilities(o_cat)
            parts.append(probs[..., self.cat_valid])
        return torch.cat(parts, dim=-1)

    def to_scores(self, means: torch.Tensor) -> torch.Tensor:
        """Map the continuous means of ``mean(out, scores=False)`` to the model's."""
        c = self.n_continuous
        continuous = self.continuous.to_scores(means[..., :c])
        return torch.cat([continuous, means[..., c:]], dim=-1)

    def sample(
        self,
        out: torch.Tensor,
        generator: torch.Generator,
        bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Draw encoded rows; categorical columns come back one-hot.

        ``bounds`` (low, high), each of length ``n_continuous``, truncate the
        Gaussian features' draws to that range (ignored for Bernoulli features).
        """
        o_cont, o_bin, o_cat = self._split(out)
        if isinstance(self.continuous, GaussianLikelihood):
            cont = self.continuous.sample(o_cont, generator, bounds)
        else:
            cont = self.continuous.sample(o_cont, generator)
        parts = [
            cont,
            torch.bernoulli(torch.sigmoid(o_bin), generator=generator),
        ]
        if self.cardinalities:
            probs = self._probabilities(o_cat)  # (N, n_cat, width)
            width = probs.shape[-1]
            draws = torch.multinomial(
                probs.reshape(-1, width), 1, generator=generator
            ).reshape(probs.shape[:-1])
            onehot = F.one_hot(draws, width).to(out.dtype)
            parts.append(onehot[..., self.cat_valid])
        return torch.cat(parts, dim=-1)

    def _probabilities(self, o_cat: torch.Tensor) -> torch.Tensor:
        logits = o_cat[..., self.cat_index].masked_fill(~self.cat_valid, -torch.inf)
        return torch.softmax(logits, dim=-1)


def make_likelihood(name: str, n_features: int) -> TableLikelihood:
    """Likelihood ``name`` ("gaussian" or "bernoulli") for ``n_features`` features."""
    return TableLikelihood(n_features, name)
