"""Near-constant columns: a wide tail in the likelihood (a contaminated Gaussian)."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose
from scipy import stats

from skvae import VAETransformer
from skvae._likelihoods import GaussianLikelihood

from .helpers import FAST


def _t(values):
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def _likelihood(share, wide, width=0.0, low=-np.inf, high=np.inf, variance=0.04):
    likelihood = GaussianLikelihood(1).double()
    likelihood.set_variance(variance)
    likelihood.set_grid(width, low, high, None, share, wide)
    return likelihood


def test_the_tail_is_scipy_s_two_gaussian_mixture():
    likelihood = _likelihood(0.01, 5.0)
    x = np.linspace(-30, 30, 41)[:, None]
    mean = np.full_like(x, 0.3)
    got = likelihood.log_prob(_t(x), _t(mean)).detach().numpy()
    expected = np.logaddexp(
        np.log(0.99) + stats.norm.logpdf(x, 0.3, 0.2),
        np.log(0.01) + stats.norm.logpdf(x, 0.3, 5.0),
    )
    assert_allclose(got, expected, rtol=1e-10)
    # Far out the tail decides: -25.5 nats at 30 (-11,000 without it).
    assert got.min() > -26


def test_the_tail_mixes_bin_and_mass_probabilities_too():
    # A grid of step 1 and a point mass at 0: both Gaussians' probabilities.
    likelihood = _likelihood(0.002, 8.0, width=1.0, low=0.0)
    x = _t([[0.0], [-2.0], [1.0], [7.0]])
    mean = _t([[0.3]] * 4)
    got = likelihood.log_prob(x, mean).detach().numpy().ravel()

    def probabilities(sd):
        norm = stats.norm(0.3, sd)
        return np.array(
            [
                norm.cdf(0.5),  # the mass at 0, its half bin included
                norm.cdf(0.5),  # below the mass: counted at it
                norm.cdf(1.5) - norm.cdf(0.5),
                norm.cdf(7.5) - norm.cdf(6.5),
            ]
        )

    expected = np.log(0.998 * probabilities(0.2) + 0.002 * probabilities(8.0))
    assert_allclose(got, expected, rtol=1e-9)


def test_draws_and_means_follow_the_mixture():
    likelihood = _likelihood(0.05, 4.0)
    generator = torch.Generator().manual_seed(0)
    out = torch.zeros(200_000, 1, dtype=torch.float64)
    draws = likelihood.sample(out, generator).detach().numpy().ravel()
    assert np.mean(np.abs(draws) > 1.0) == pytest.approx(
        0.05 * 2 * stats.norm.sf(1.0, 0, 4.0), rel=0.05
    )
    assert draws.var() == pytest.approx(0.95 * 0.04 + 0.05 * 16.0, rel=0.03)
    assert likelihood.variance().item() == pytest.approx(0.95 * 0.04 + 0.05 * 16.0)
    # Truncated to [-1, 2]: each Gaussian weighted by its mass inside.
    bounds = (_t([-1.0]), _t([2.0]))
    inside = likelihood.sample(out, generator, bounds).detach().numpy().ravel()
    assert inside.min() >= -1.0 and inside.max() <= 2.0
    wide = stats.norm(0, 4.0)
    weight = 0.05 * (wide.cdf(2) - wide.cdf(-1))
    weight /= weight + 0.95 * (stats.norm.cdf(10) - stats.norm.cdf(-5))
    assert np.mean(inside > 1.0) == pytest.approx(
        weight * (wide.cdf(2) - wide.cdf(1)) / (wide.cdf(2) - wide.cdf(-1)), rel=0.1
    )
    # A censored feature's mean mixes the two censored means.
    censored = _likelihood(0.05, 4.0, low=0.0)
    mean = censored.mean(_t([[0.5]])).item()
    samples = np.maximum(censored.sample(out + 0.5, generator).detach().numpy(), 0)
    assert mean == pytest.approx(float(samples.mean()), rel=0.02)


def test_a_censored_location_stays_within_six_sd_of_its_mass():
    # Beyond a mass nothing stops the decoder's location from drifting; it is
    # kept within 6 sd (1e-9 of the mass's probability), smoothly.
    likelihood = _likelihood(0.0, 1.0, low=0.0, variance=0.25)
    out = _t([[-1000.0], [-1.0], [0.0], [2.0]])
    located = likelihood.located(out, likelihood.log_var()).detach().numpy()
    assert_allclose(located.ravel(), [-3.0, -1.0, 0.0, 2.0], atol=1e-6)
    ink = likelihood.log_prob(_t([[1.0]] * 4), out).detach().numpy().ravel()
    assert ink[0] == pytest.approx(stats.norm.logpdf(1.0, -3.0, 0.5), rel=1e-6)
    mean = likelihood.mean(out).detach().numpy().ravel()
    assert 0 <= mean[0] < 1e-9  # the mass's value, not a location far below


def near_constant(n=1000, seed=0):
    """A pixel-like column (99.6% zeros), a 90%-zeros one and a constant one."""
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n)
    rare = np.zeros(n)
    rare[:4] = [1.5, 0.7, 3.2, 1.1]  # not whole numbers: no levels
    common = np.where(rng.random(n) < 0.9, 0.0, rng.integers(1, 10, n))
    return pd.DataFrame(
        {
            "x": t,
            "y": t + 0.3 * rng.normal(size=n),
            "rare": rare,
            "common": common,
            "constant": np.full(n, 2.5),
        }
    )


def test_near_constant_columns_get_a_tail_and_others_do_not():
    table = near_constant()
    vae = VAETransformer(2, scaling="standard", **FAST).fit(table)
    grid = vae.codec_.likelihood_grid()
    assert (grid.tail_share > 0).tolist() == [False, False, True, False, True]
    assert grid.tail_share[2] == pytest.approx(4 / 1000)
    assert grid.tail_share[4] == pytest.approx(1e-3)  # the floor
    rare = table["rare"]
    # As wide as the range, in standardised units; 1 for the constant.
    assert grid.tail_sd[2] == pytest.approx(3.2 / rare.std(ddof=0), rel=1e-6)
    assert grid.tail_sd[4] == 1.0
    # The decoder's variance around its mean includes the tail.
    assert vae.noise_variance_[2] > 0.002 * 9.0 * 0.9


@pytest.fixture(scope="module", params=["standard", "quantile"])
def fitted(request):
    table = near_constant()
    vae = VAETransformer(2, scaling=request.param, max_iter=60, random_state=0)
    return table, vae.fit(table)


def test_a_value_unseen_on_a_near_constant_column_costs_nats_not_thousands(fitted):
    table, vae = fitted
    test = table.iloc[10:20].copy()
    base = vae.score_samples(test)
    test["rare"] = 8.0  # ink where training had three rows of it, far beyond
    test["constant"] = 3.5  # off the constant
    cost = base - vae.score_samples(test)
    assert np.all(np.isfinite(cost))
    assert cost.max() < 60, cost
    # The loaded model scores alike: the tail is the codec's, not saved.
    loaded = pickle.loads(pickle.dumps(vae))
    assert_allclose(loaded.score_samples(test), vae.score_samples(test), rtol=1e-6)


def test_draws_of_a_near_constant_column_stay_near_constant(fitted):
    _, vae = fitted
    drawn = vae.sample(4000, random_state=0)
    assert (drawn["rare"] == 0).mean() > 0.97
    assert drawn["rare"].between(0, 3.2).all()
    assert (drawn["constant"] == 2.5).all()


@pytest.mark.parametrize("sides", ["both", "low", "high"])
@pytest.mark.parametrize("mapped", [False, True])
@pytest.mark.parametrize("tailed", [False, True])
def test_point_masses_alone_take_a_fused_path_with_the_same_numbers(
    tailed, mapped, sides
):
    # Point masses without bins (image pixels at 0 and 1, mapped to normal
    # scores or not) go through ``masses_log_prob``, whose derivatives are
    # written out: the same log-probabilities and gradients as the general
    # path, at the masses, off them, at both masses of a constant feature,
    # with locations beyond the location bound, and with a sample dimension
    # in front; with masses on both sides, or on one side only (its own
    # shorter path: exact zeros, a cap).
    torch.manual_seed(0)
    d, n = 12, 40
    low = np.full(d, -np.inf)
    low[:8], low[10] = -0.5, 0.3
    high = np.full(d, np.inf)
    high[4:9], high[10] = 1.0, 0.3 - 1e-6  # feature 10: constant at 0.3
    if sides == "low":
        high[:] = np.inf
    elif sides == "high":
        low[:] = -np.inf
    share = np.zeros(d)
    if tailed:
        share[[0, 5, 9, 10]] = 0.02
    likelihood = GaussianLikelihood(d).double()
    knots = None
    if mapped:  # a map on some features, as scaling="quantile" gives them
        knots = np.full((d, 2, 5), np.nan)
        for j in (0, 5, 9):
            knots[j] = [np.linspace(-2.0, 3.0, 5), [-2.5, -1.0, 0.0, 0.4, 2.0]]
    likelihood.set_grid(0.0, low, high, knots, share, np.where(share > 0, 3.0, 1.0))
    assert (likelihood.mapped is not None) == mapped
    with torch.no_grad():
        likelihood.raw_log_var.copy_(torch.randn(d, dtype=torch.float64))
    assert likelihood.masses_only
    x = torch.randn(n, d, dtype=torch.float64)
    x = torch.where(torch.rand(n, d) < 0.4, _t(low).clamp(min=-9), x)
    x = torch.where(torch.rand(n, d) < 0.3, _t(high).clamp(max=9), x)
    x[:, 10] = 0.3
    x[:3, 10] = 2.0  # off a constant feature's value
    out = 3 * torch.randn(n, d, dtype=torch.float64)
    out[:5, :4], out[5:10, 4:8] = -20.0, 25.0  # beyond the location bound
    for shape in [(n, d), (3, n, d)]:
        outs = out.expand(shape).clone().requires_grad_()
        results = []
        for fused in (True, False):
            likelihood.masses_only = fused
            log_p = likelihood.log_prob(x, outs)
            grads = torch.autograd.grad(log_p.sum(), [outs, likelihood.raw_log_var])
            results.append((log_p.detach(), *grads))
        likelihood.masses_only = True
        for got, expected in zip(*results, strict=True):
            assert_allclose(got.numpy(), expected.numpy(), rtol=1e-7, atol=1e-9)
        assert torch.isfinite(results[0][0]).all()
        if sides == "both":
            at_both = results[0][0][..., x[:, 10] == 0.3, 10]  # probability 1
            assert_allclose(at_both.numpy(), 0.0, atol=1e-12)
        sided = likelihood.sides
        assert (sided.lows is None) == (sides == "high")
        assert (sided.highs is None) == (sides == "low")
        assert sided.constant == (sides == "both")
    # The written-out derivatives against finite differences.
    from skvae._likelihoods import masses_log_prob

    index = torch.as_tensor(np.flatnonzero(share > 0))
    tail = (index, _t(share)[index], torch.full((len(index),), 3.0).double())
    torch.autograd.gradcheck(
        lambda o, v: masses_log_prob(
            x[:6], o, v, _t(low), _t(high), tail if tailed else None
        ),
        (
            out[:6].clone().requires_grad_(),
            likelihood.log_var().detach().requires_grad_(),
        ),
    )


def test_squared_residuals_at_a_mass_are_the_censored_gaussian_s():
    # A stream's variance follows each batch by an EM step: at a point mass
    # the squared residual is its expectation beyond the bound (scipy's
    # truncated normal), off the masses the plain square, and nothing at both
    # masses of a constant feature.
    likelihood = GaussianLikelihood(3).double()
    likelihood.set_variance(0.25)
    likelihood.set_grid(0.0, [-1.0, -np.inf, 0.5], [2.0, np.inf, 0.5 - 1e-9])
    sd = 0.5
    x = _t([[-1.0, 0.3, 0.5], [2.0, -4.0, 1.0], [0.7, 1.0, 0.5]])
    out = _t([[0.2, 0.0, 0.0], [-0.3, 1.0, 0.0], [0.1, 0.0, 0.0]])
    got = likelihood.squared_residuals(x, out).detach().numpy()
    below = stats.truncnorm(-np.inf, (-1.0 - 0.2) / sd).moment(2) * sd**2
    above = stats.truncnorm((2.0 + 0.3) / sd, np.inf).moment(2) * sd**2
    assert_allclose(got[0, 0], below, rtol=1e-8)
    assert_allclose(got[1, 0], above, rtol=1e-8)
    assert_allclose(got[2, 0], 0.36, rtol=1e-12)
    assert_allclose(got[:, 1], [0.09, 25.0, 1.0], rtol=1e-12)
    assert np.isnan(got[0, 2]) and np.isnan(got[2, 2])


def test_a_likelihood_pickled_before_the_mass_sides_reads_them_on_loading():
    # A module pickled (or torch.save'd) by an earlier version has no
    # ``sides``: unpickling reads them from its grid.
    likelihood = GaussianLikelihood(3).double()
    likelihood.set_grid(0.0, [-1.0, -np.inf, 0.0], [np.inf, 2.0, np.inf])
    state = likelihood.__getstate__()
    del state["sides"]
    old = GaussianLikelihood.__new__(GaussianLikelihood)
    old.__setstate__(state)
    x = torch.zeros(2, 3, dtype=torch.float64)
    assert_allclose(
        old.log_prob(x, x).detach().numpy(), likelihood.log_prob(x, x).detach().numpy()
    )
