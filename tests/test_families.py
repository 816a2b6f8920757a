"""Column families: discretised and censored Gaussians, chosen from the data."""

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose
from scipy import stats

from skvae import VAEImputer, VAETransformer
from skvae._likelihoods import GaussianLikelihood, interval_log_prob

from .helpers import FAST


def _t(values):
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def test_the_discretised_gaussian_is_scipy_s_bin_probability():
    rng = np.random.default_rng(0)
    mean, sd = rng.normal(0, 3, 500), rng.uniform(0.05, 3.0, 500)
    x = np.round(rng.normal(0, 4, 500))
    got = interval_log_prob(_t(x), _t(mean), _t(sd), _t(1.0), _t(-np.inf), _t(np.inf))
    lower = stats.norm.cdf(x + 0.5, mean, sd) - stats.norm.cdf(x - 0.5, mean, sd)
    upper = stats.norm.sf(x - 0.5, mean, sd) - stats.norm.sf(x + 0.5, mean, sd)
    bins = np.where(x > mean, upper, lower)  # each in its precise tail
    usable = bins > 1e-250  # scipy's difference underflows further out; ours not
    np.testing.assert_allclose(got.numpy()[usable], np.log(bins[usable]), rtol=1e-9)
    assert np.all(np.isfinite(got.numpy()))


def test_a_censored_bound_has_the_tail_s_probability():
    mean, sd = _t([0.3, -1.0, 2.0, 0.0]), _t([1.0, 0.5, 2.0, 1.0])
    low, high = _t(-1.0), _t(2.0)
    x = _t([-1.0, -3.0, 2.0, 0.5])  # at low, below low, at high, inside
    plain = interval_log_prob(x, mean, sd, _t(0.0), low, high).numpy()
    expected = [
        stats.norm.logcdf(-1.0, 0.3, 1.0),
        stats.norm.logcdf(-1.0, -1.0, 0.5),  # beyond the mass: counted at it
        stats.norm.logsf(2.0, 2.0, 2.0),
        stats.norm.logpdf(0.5, 0.0, 1.0),  # off the masses: the density
    ]
    np.testing.assert_allclose(plain, expected, rtol=1e-12)
    # On a grid, a censored bound takes its half bin too.
    gridded = interval_log_prob(x, mean, sd, _t(1.0), low, high).numpy()
    assert gridded[0] == pytest.approx(stats.norm.logcdf(-0.5, 0.3, 1.0), rel=1e-12)
    assert gridded[2] == pytest.approx(stats.norm.logsf(1.5, 2.0, 2.0), rel=1e-12)


def test_a_narrow_bin_is_its_density_times_its_width():
    x, mean, sd = _t([0.37, 5.0]), _t([0.0, 1.0]), _t([1.0, 2.0])
    got = interval_log_prob(x, mean, sd, _t(1e-5), _t(-np.inf), _t(np.inf)).numpy()
    expected = stats.norm.logpdf([0.37, 5.0], [0.0, 1.0], [1.0, 2.0]) + np.log(1e-5)
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_a_fine_grid_takes_the_density_path_within_its_bound():
    # A step of 1/4000 of a standard deviation (diamonds' price in dollars) is
    # below FINE_GRID times the smallest sd the model allows: such a feature
    # leaves the gridded ones, and its probability is the density times the
    # width, within max(z^2, 1) (w / sd)^2 / 24 nats of the bin's.
    likelihood = GaussianLikelihood(2).double()
    width = 2.5e-4
    likelihood.set_grid([width, 0.1], -np.inf, np.inf)
    assert likelihood.gridded.tolist() == [1]
    likelihood.set_variance(1e-3 * 1.0001)  # its floor: the widest bins there are
    sd = float(torch.exp(0.5 * likelihood.log_var()[0]).detach())
    z = np.array([0.0, 1.0, 3.0, 10.0])
    x = torch.stack([_t(z * sd), _t(np.zeros(4))], dim=1)
    got = likelihood.log_prob(x, torch.zeros_like(x))[:, 0].detach().numpy()
    exact = interval_log_prob(
        _t(z * sd), _t(0.0), _t(sd), _t(width), _t(-np.inf), _t(np.inf)
    ).numpy()
    bound = np.maximum(z**2, 1.0) * (width / sd) ** 2 / 24 + 1e-12
    assert np.all(np.abs(got - exact) <= bound)
    assert np.abs(got - exact)[3] > 1e-4  # not the same computation
    # A step above it stays a bin.
    coarse = GaussianLikelihood(1).double()
    coarse.set_grid([0.01], -np.inf, np.inf)
    assert coarse.gridded.tolist() == [0] and coarse.fine_log_width is None


def test_gradients_stay_finite_at_masses_and_far_out():
    likelihood = GaussianLikelihood(3)
    likelihood.set_grid([1.0, 0.0, 0.5], [-1.0, -1.0, -np.inf], [np.inf, 1.0, np.inf])
    out = torch.tensor([[0.0, 0.0, 0.0], [40.0, -40.0, 60.0]], requires_grad=True)
    x = torch.tensor([[-1.0, 1.0, 3.0], [-1.0, 1.0, -60.0]])
    log_p = likelihood.log_prob(x, out)
    log_p.sum().backward()
    assert torch.isfinite(log_p).all()
    assert torch.isfinite(out.grad).all()
    assert torch.isfinite(likelihood.raw_log_var.grad).all()


def test_a_bin_whose_edges_rounding_merged_takes_the_density():
    # In float32 a value of 2^25 has neighbours 4 apart: its bin [x - 0.5,
    # x + 0.5] rounds to a single point, whose probability is then the
    # density at the value times the bin's width, not the log of nothing.
    x = torch.tensor([2.0**25, 3.0], dtype=torch.float32)
    mean = torch.tensor([2.0**25 + 300.0, 3.5], requires_grad=True)
    sd = torch.tensor([200.0, 1.0])
    one, inf = torch.tensor(1.0), torch.tensor(np.inf)
    got = interval_log_prob(x, mean, sd, one, -inf, inf)
    expected = stats.norm.logpdf(300.0 / 200.0) - np.log(200.0)
    assert got[0].item() == pytest.approx(expected, rel=1e-5)
    assert got[1].item() == pytest.approx(
        np.log(stats.norm.cdf(0.0) - stats.norm.cdf(-1.0)), rel=1e-5
    )
    got.sum().backward()
    assert torch.isfinite(mean.grad).all()


def counts_table(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    spend = rng.lognormal(3.0, 1.0, n)
    spend[rng.random(n) < 0.3] = 0.0
    return pd.DataFrame(
        {
            "visits": rng.poisson(rng.gamma(0.5, 8.0, n)),  # 40% zeros, many levels
            "spend": spend,  # 30% exact zeros, then a skewed density
            "x": rng.normal(size=n),
            "children": rng.choice([0, 1, 2], n, p=[0.3, 0.5, 0.2]),  # levels
        }
    )


def test_auto_chooses_each_family_from_the_data():
    table = counts_table(500)
    vae = VAETransformer(1, **FAST).fit(table)
    assert vae.column_likelihoods_.tolist() == [
        "discrete",
        "point_mass",
        "gaussian",
        "categorical",
    ]
    assert vae.is_categorical_.tolist() == [False, False, False, True]
    # An array's columns have no types: whole numbers stay Gaussian there.
    array = VAETransformer(1, **FAST).fit(table.to_numpy(dtype=float))
    assert array.column_likelihoods_.tolist() == [
        "gaussian",
        "point_mass",
        "gaussian",
        "gaussian",
    ]


def test_families_can_be_overridden_per_column_or_for_all():
    table = counts_table(300)
    families = {"visits": "gaussian", "children": "discrete"}
    vae = VAETransformer(1, families=families, **FAST).fit(table.iloc[:, [0, 1, 3]])
    assert vae.column_likelihoods_.tolist() == ["gaussian", "point_mass", "discrete"]
    levels = VAETransformer(1, families={"x": "categorical"}, **FAST)
    assert levels.fit(table.round(1)).column_likelihoods_[2] == "categorical"
    every = VAETransformer(1, families="gaussian", **FAST).fit(table)
    assert every.column_likelihoods_.tolist() == ["gaussian"] * 4
    # Arrays: by index; a one-decimal column can be discrete on its 0.1 grid.
    X = np.round(np.random.default_rng(0).normal(size=(200, 2)), 1)
    array = VAETransformer(1, families={1: "discrete"}, **FAST).fit(X)
    assert array.column_likelihoods_.tolist() == ["gaussian", "discrete"]
    assert np.allclose(array.sample(50, random_state=0)[:, 1] * 10 % 1, 0, atol=1e-6)


def test_a_few_values_repeated_off_their_grid_are_levels():
    # hmda's `unemp`: an industry's unemployment rate, ten values over 2,380
    # rows, stored as float32 (3.2 is 3.200000047683716).
    rng = np.random.default_rng(0)
    n = 600
    rates = np.array([1.8, 2.0, 3.1, 3.2, 3.9, 4.3, 10.6], dtype=np.float32)
    table = pd.DataFrame(
        {
            "unemp": rng.choice(rates, n).astype(np.float64),
            # tenths filling their grid: a measured number, not levels
            "temp": np.round(rng.uniform(36.5, 37.4, n), 1),
            "x": rng.normal(size=n),
        }
    )
    vae = VAETransformer(1, **FAST).fit(table)
    assert vae.is_categorical_.tolist() == [True, False, False]
    drawn = vae.sample(300, random_state=0)
    assert drawn["unemp"].dtype == np.float64
    assert set(drawn["unemp"]) <= set(table["unemp"])
    # Too few rows for each value, or asked for: a number.
    few = VAETransformer(1, **FAST).fit(table.iloc[:100])
    assert few.column_likelihoods_[0] == "point_mass"
    kept = VAETransformer(1, families={"unemp": "gaussian"}, **FAST).fit(table)
    assert kept.column_likelihoods_[0] == "gaussian"


@pytest.mark.parametrize(
    ("families", "match"),
    [
        ({"visits": "poisson"}, r"families\['visits'\] must be one of"),
        ({"nope": "discrete"}, r"families names a column that X does not have: 'nope'"),
        ({"x": "discrete"}, r"Column 'x' was given the family 'discrete', but its"),
        ({"kind": "gaussian"}, r"the column is categorical"),
    ],
)
def test_a_family_that_cannot_apply_is_a_clear_error(families, match):
    table = counts_table(200).assign(kind=lambda t: np.where(t.x > 0, "a", "b"))
    with pytest.raises(ValueError, match=match):
        VAETransformer(1, families=families, **FAST).fit(table)
    with pytest.raises(ValueError, match="likelihood='bernoulli'"):
        VAETransformer(1, likelihood="bernoulli", families="discrete", **FAST).fit(
            np.random.default_rng(0).random((20, 2))
        )


def _bins(vae, values):
    return np.exp(vae.score_samples(np.asarray(values, float).reshape(-1, 1)))


def test_score_is_a_probability_on_a_grid_and_a_mixed_measure_at_masses():
    # No latent: the ELBO is the log-likelihood itself, so the probabilities
    # of every value a column can hold add up to 1.
    rng = np.random.default_rng(0)
    counts = np.clip(rng.poisson(2.0, (2000, 1)), 0, 6)
    quick = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    vae = VAETransformer(0, families="discrete", **quick).fit(counts)
    assert vae.column_likelihoods_.tolist() == ["discrete"]
    assert _bins(vae, np.arange(7)).sum() == pytest.approx(1.0, abs=1e-6)
    # A mass at each bound and a density between them: masses + integral = 1.
    values = np.clip(rng.normal(0.0, 1.0, 2000), -1.0, 1.5)
    clipped = VAETransformer(0, **quick).fit(values.reshape(-1, 1))
    assert clipped.column_likelihoods_.tolist() == ["point_mass"]
    grid = np.linspace(-1.0, 1.5, 20001)[1:-1]
    inside = np.trapezoid(_bins(clipped, grid), grid)
    masses = _bins(clipped, [-1.0, 1.5]).sum()
    assert masses > 0.1  # the data's: 0.23
    assert masses + inside == pytest.approx(1.0, abs=1e-3)
    # A fine grid (whole dollars of a price with a sd of 5,000) too.
    prices = np.rint(rng.normal(20_000.0, 5_000.0, (2000, 1)))
    fine = VAETransformer(0, families="discrete", **quick).fit(prices)
    assert fine.module_.likelihood.continuous.fine_log_width is not None
    whole = np.arange(prices.min() - 20_000, prices.max() + 20_000)
    assert _bins(fine, whole).sum() == pytest.approx(1.0, abs=1e-6)


def _total_variation(real, fake):
    real, fake = real.value_counts(normalize=True), fake.value_counts(normalize=True)
    return 0.5 * real.sub(fake, fill_value=0).abs().sum()


def test_samples_follow_a_count_column_and_its_point_masses():
    table = counts_table(2000)
    small = dict(hidden_layer_sizes=(64,), random_state=0)
    vae = VAETransformer(2, **small).fit(table)
    drawn = vae.sample(6000, random_state=0)
    # Overdispersed counts (40% zeros, a long tail): twice as close to the data
    # as the Gaussian family's rounded draws (measured: 0.11 against 0.28).
    gaussian = VAETransformer(2, families={"visits": "gaussian"}, **small)
    rounded = gaussian.fit(table).sample(6000, random_state=0)
    tv = _total_variation(table["visits"], drawn["visits"])
    assert tv < 0.5 * _total_variation(table["visits"], rounded["visits"])
    assert (drawn["visits"] == 0).mean() == pytest.approx(0.33, abs=0.05)
    assert _total_variation(table["children"], drawn["children"]) < 0.05
    assert drawn["visits"].dtype == drawn["children"].dtype == np.int64
    assert (drawn["spend"] == 0).mean() == pytest.approx(0.3, abs=0.06)


def test_whole_numbers_with_holes_stay_discrete_and_imputations_can_be_whole():
    table = counts_table(600).astype({"visits": float})
    holes = table.copy()
    rows = np.random.default_rng(1).random(len(table)) < 0.2
    holes.loc[rows, "visits"] = np.nan
    vae = VAETransformer(1, **FAST).fit(holes)
    assert vae.column_likelihoods_[0] == "discrete"
    assert np.isfinite(vae.score_samples(holes)).all()
    imputer = VAEImputer(1, **FAST).fit(holes)
    # A float column gets its conditional mean; column_values=True the
    # nearest whole number, and an integer dtype keeps its values by default.
    means = imputer.transform(holes)["visits"][rows].to_numpy()
    assert not np.all(means == np.round(means))
    whole = imputer.set_params(column_values=True).transform(holes)["visits"][rows]
    assert_allclose(whole, np.round(means))
    nullable = holes.astype({"visits": "Int64"})
    imputer = VAEImputer(1, **FAST).fit(nullable)
    filled = imputer.transform(nullable)
    assert filled["visits"].dtype == "Int64" and filled["visits"].notna().all()


def test_a_stream_follows_the_family_and_refuses_what_a_request_cannot_hold():
    table = counts_table(600)
    vae = VAETransformer(1, **FAST).partial_fit(table.iloc[:300])
    assert vae.column_likelihoods_[0] == "discrete"
    halves = table.iloc[300:].assign(visits=lambda t: t["visits"] + 0.5)
    vae.partial_fit(halves)  # no longer whole numbers; the zeros stay a mass
    assert vae.column_likelihoods_[0] == "point_mass"
    fixed = VAETransformer(1, families={"visits": "discrete"}, **FAST)
    fixed.partial_fit(table.iloc[:300])
    before = fixed.score(table)
    with pytest.raises(ValueError, match="Column 'visits' was given the family"):
        fixed.partial_fit(table.iloc[300:].assign(visits=lambda t: t.x))
    assert fixed.column_likelihoods_[0] == "discrete"
    assert fixed.score(table) == before  # the failed batch changed nothing


def test_the_mean_of_a_censored_column_counts_its_masses():
    # inverse_transform and the imputer's fills are means: at a point mass the
    # mean is not the Gaussian's location.
    likelihood = GaussianLikelihood(2)
    likelihood.set_grid([0.0, 1.0], [-1.0, 0.0], [np.inf, 3.0])
    likelihood.set_variance(0.64)
    out = torch.tensor([[0.3, 1.2], [-2.0, -1.0]], dtype=torch.float64)
    mean = likelihood.double().mean(out).detach().numpy()
    generator = torch.Generator().manual_seed(0)
    draws = out[:, None, :] + 0.8 * torch.randn(
        2, 200_000, 2, generator=generator, dtype=torch.float64
    )
    censored = torch.clamp(draws[..., 0], min=-1.0).mean(dim=1).numpy()
    assert_allclose(mean[:, 0], censored, atol=0.005)  # exact but for the draws
    gridded = torch.clamp(torch.round(draws[..., 1]), 0, 3).mean(dim=1).numpy()
    assert_allclose(mean[:, 1], gridded, atol=0.03)  # the grid's mean, roughly
