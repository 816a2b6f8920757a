"""scaling="quantile": each column mapped through its quantiles to normal scores."""

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose
from scipy import stats

from skvae import VAEImputer, VAETransformer
from skvae._likelihoods import GaussianLikelihood
from skvae._tabular import (
    SKEWED,
    is_skewed,
    normal_score_knots,
    piecewise_linear,
    ramp_form,
)

from .helpers import FAST

QUICK = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0)


def skewed_table(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    spend = rng.lognormal(0.0, 1.0, n)
    spend[rng.random(n) < 0.25] = 0.0
    t = rng.normal(size=n)
    return pd.DataFrame(
        {
            "income": np.exp(0.8 * t + 0.3 * rng.normal(size=n)),  # long right tail
            "spend": spend,  # 25% exact zeros, then a skewed amount
            "visits": rng.negative_binomial(2, 0.2, n),  # overdispersed counts
            "age": (40 + 10 * t).round(1),
        }
    )


def test_knots_map_mid_rank_shares_to_normal_scores():
    values = np.array([0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 5.0, 9.0])
    knots = normal_score_knots(values)
    assert_allclose(knots[0], [0, 1, 2, 5, 9])
    shares = np.array([1.5, 3.5, 5.0, 6.5, 7.5]) / 8  # below + half of the ties
    assert_allclose(knots[1], stats.norm.ppf(shares))
    # A mass at a bound keeps its share: a standard normal censored at the
    # mass's score puts that share on it.
    masses = normal_score_knots(values, mass_low=True, mass_high=True)
    assert stats.norm.cdf(masses[1, 0]) == pytest.approx(3 / 8)
    assert stats.norm.sf(masses[1, -1]) == pytest.approx(1 / 8)
    # Weights count as repeated rows; fewer than three values need no map.
    weighted = normal_score_knots(
        np.array([0.0, 1, 2, 5, 9]), np.array([3, 1, 2, 1, 1])
    )
    assert_allclose(weighted, knots)
    assert normal_score_knots(np.array([1.0, 2.0, 1.0])) is None
    # Large columns keep one knot per 30 values, at most 100, ends included.
    wide = normal_score_knots(np.random.default_rng(0).lognormal(size=100_000))
    assert wide.shape == (2, 100) and (np.diff(wide, axis=1) > 0).all()


def test_the_map_is_linear_between_knots_and_beyond_them():
    xp, fp = np.array([0.0, 1.0, 3.0]), np.array([-1.0, 0.0, 1.0])
    assert_allclose(
        piecewise_linear(np.array([-1.0, 0.5, 2.0, 5.0]), xp, fp),
        [-2.0, -0.5, 0.5, 2.0],
    )
    # The same map as a sum of ramps, and flat beyond a censored end.
    x0, f0, left, change = ramp_form(xp, fp, flat_high=True)
    v = np.linspace(-2, 6, 41)
    ramps = f0 + left * (v - x0) + (change * np.maximum(v[:, None] - xp, 0)).sum(1)
    assert_allclose(ramps, np.minimum(piecewise_linear(v, xp, fp), 1.0))


def test_training_values_round_trip_and_the_encoder_sees_normal_scores():
    table = skewed_table()
    vae = VAETransformer(2, scaling="quantile", **FAST).fit(table)
    assert vae.column_likelihoods_.tolist() == [
        "gaussian",
        "point_mass",
        "discrete",
        "gaussian",
    ]
    codec = vae._codec
    values, _ = codec.encode(table)
    # The scores of a skewed column are symmetric, where standardised ones
    # are not.
    assert abs(stats.skew(values[:, 0])) < 0.1 < stats.skew(table["income"])
    decoded = codec.decode(values, samples=True)
    assert_allclose(decoded.to_numpy(float), table.to_numpy(float), rtol=1e-9)


def _density(vae, values):
    return np.exp(vae.score_samples(pd.DataFrame({"v": values})))


def test_score_is_a_density_a_probability_and_a_mixed_measure_in_data_units():
    # No latent: the ELBO is the log-likelihood itself, which must integrate
    # (or sum) to 1 over everything the column can hold, the map's Jacobian
    # included.
    rng = np.random.default_rng(0)
    skewed = pd.DataFrame({"v": rng.lognormal(0.0, 0.8, 3000)})
    vae = VAETransformer(0, scaling="quantile", **QUICK).fit(skewed)
    grid = np.linspace(-20.0, 200.0, 400_001)
    assert np.trapezoid(_density(vae, grid), grid) == pytest.approx(1.0, abs=2e-3)
    # It fits the skewed marginal better than a Gaussian on standardised values.
    standard = VAETransformer(0, scaling="standard", **QUICK).fit(skewed)
    assert vae.score(skewed) > standard.score(skewed) + 0.3
    counts = pd.DataFrame({"v": rng.negative_binomial(2, 0.2, 3000)})
    discrete = VAETransformer(0, scaling="quantile", **QUICK).fit(counts)
    assert discrete.column_likelihoods_.tolist() == ["discrete"]
    whole = np.arange(0, 400)  # below 0 is the mass at 0 (censored)
    assert _density(discrete, whole).sum() == pytest.approx(1.0, abs=1e-4)
    spend = skewed_table(3000)[["spend"]].rename(columns={"spend": "v"})
    mixed = VAETransformer(0, scaling="quantile", **QUICK).fit(spend)
    assert mixed.column_likelihoods_.tolist() == ["point_mass"]
    inside = np.linspace(0.0, 300.0, 600_001)[1:]
    total = np.trapezoid(_density(mixed, inside), inside) + _density(mixed, [0.0])[0]
    assert total == pytest.approx(1.0, abs=2e-3)


def test_the_mean_through_a_map_is_the_mean_in_data_units():
    # inverse_transform and the imputer's fills are E[x], not the map of E[z].
    xp = np.array([-1.0, 0.0, 0.5, 4.0])  # data units, then scores
    zp = np.array([-0.8, 0.0, 1.0, 2.0])
    likelihood = GaussianLikelihood(2).double()
    knots = np.full((2, 2, 4), np.nan)
    knots[0] = [xp, zp]
    knots[1] = [xp, zp]
    # feature 1 is censored at its lowest knot (a point mass there)
    likelihood.set_grid([0.0, 0.0], [-np.inf, -0.8], [np.inf, np.inf], knots)
    likelihood.set_variance(0.49)
    out = torch.tensor([[0.3, 0.3], [-1.5, -1.5], [2.5, 2.5]], dtype=torch.float64)
    mean = likelihood.mean(out).detach().numpy()
    draws = out.numpy()[:, None, :] + 0.7 * np.random.default_rng(0).normal(
        size=(3, 400_000, 2)
    )
    values = piecewise_linear(draws, zp, xp)
    values[..., 1] = np.maximum(values[..., 1], -1.0)
    expected = values.mean(axis=1)
    assert_allclose(piecewise_linear(mean, zp, xp), expected, atol=0.015)  # 4 SE


def test_the_mean_of_a_grid_with_masses_is_its_values_mean():
    # A discrete column's knots sit on its bins' upper edges: beyond a
    # censored bound the inverse map is the bound's value, not the edge's.
    rng = np.random.default_rng(0)
    values = np.where(rng.random(3000) < 0.5, 0, rng.poisson(4, 3000)).astype(float)
    table = pd.DataFrame({"v": values})
    vae = VAETransformer(0, scaling="quantile", families="discrete", **QUICK)
    vae.set_params(max_iter=50).fit(table)
    mean = vae.inverse_transform(vae.transform(table.iloc[:1]))["v"].iloc[0]
    drawn = vae.sample(40_000, random_state=0)["v"].mean()
    # Measured: 1.965 against 1.998 (the mean is of the map, unrounded).
    assert mean == pytest.approx(drawn, abs=0.06)
    assert mean == pytest.approx(values.mean(), abs=0.1)


def test_knots_float32_cannot_tell_apart_are_merged():
    # Whole numbers in the millions next to a cluster: steps of 1e-8 standard
    # deviations, which float32 training cannot hold apart.
    rng = np.random.default_rng(0)
    big = np.rint(1e8 * rng.lognormal(0, 1.5, 600))
    v = np.where(rng.random(600) < 0.6, rng.integers(1000, 1012, 600), big)
    table = pd.DataFrame({"v": v.astype(np.int64), "b": rng.normal(size=600)})
    vae = VAETransformer(1, scaling="quantile", **FAST).fit(table)
    assert np.isfinite(vae.score_samples(table)).all()
    knots = vae._codec.columns[0].knots
    assert (np.diff(knots.astype(np.float32), axis=1) > 0).all()
    # Weights that leave a value no share give no infinite or repeated score.
    weights = np.array([1, 1, 1e-17, 1e-17, 1, 1])
    for half in (None, 0.5):
        knots = normal_score_knots(np.arange(6.0), weights, half=half)
        assert np.isfinite(knots).all() and (np.diff(knots, axis=1) > 0).all()


def test_samples_follow_skewed_columns_and_their_masses():
    table = skewed_table(2000)
    small = dict(hidden_layer_sizes=(64,), random_state=0)
    quantile = VAETransformer(2, scaling="quantile", **small).fit(table)
    standard = VAETransformer(2, scaling="standard", **small).fit(table)
    drawn = quantile.sample(4000, random_state=0)
    plain = standard.sample(4000, random_state=0)

    def ks(column, sample):
        return stats.ks_2samp(table[column], sample[column]).statistic

    # Measured: income 0.012 against 0.057, spend 0.029 against 0.088,
    # visits 0.019 against 0.088.
    for column in ("income", "spend", "visits"):
        assert ks(column, drawn) < 0.5 * ks(column, plain)
    assert (drawn["spend"] == 0).mean() == pytest.approx(0.25, abs=0.06)
    assert drawn["visits"].dtype == np.int64
    assert (drawn >= table.min()).all().all() and (drawn <= table.max()).all().all()


def test_holes_and_values_beyond_the_training_range():
    table = skewed_table(800)
    holes = table.copy()
    holes.iloc[::7, 0] = np.nan
    vae = VAETransformer(2, scaling="quantile", **FAST).fit(holes)
    beyond = table.iloc[:5].assign(income=[-1.0, 0.0, 1e3, 1e6, np.nan])
    assert np.isfinite(vae.score_samples(beyond)).all()
    assert np.isfinite(vae.transform(beyond)).all()
    filled = VAEImputer(2, scaling="quantile", **FAST).fit_transform(holes)
    fills = filled.loc[holes["income"].isna(), "income"]
    assert fills.between(table["income"].min(), table["income"].max()).all()


def test_a_stream_keeps_the_map_of_its_first_batch():
    table = skewed_table(1200)
    vae = VAETransformer(2, scaling="quantile", **FAST)
    vae.partial_fit(table.iloc[:400])
    knots = vae._codec.columns[0].knots.copy()
    mean, scale = vae.mean_.copy(), vae.scale_.copy()
    vae.partial_fit(table.iloc[400:] * [3.0, 1, 1, 1])  # a later, larger batch
    assert_allclose(vae._codec.columns[0].knots, knots)
    assert_allclose(vae.mean_[:2], mean[:2])
    assert_allclose(vae.scale_[:2], scale[:2])
    assert np.isfinite(vae.score_samples(table)).all()


def test_saved_models_round_trip_and_edited_knots_are_refused(tmp_path):
    table = skewed_table(600)
    vae = VAETransformer(2, scaling="quantile", **FAST).fit(table)
    again = pickle.loads(pickle.dumps(vae))
    assert_allclose(again.score_samples(table), vae.score_samples(table))
    skops_io = pytest.importorskip("skops.io")
    path = tmp_path / "model.skops"
    skops_io.dump(vae, path)
    loaded = skops_io.load(path, trusted=["skvae._transformer.VAETransformer"])
    assert_allclose(loaded.score_samples(table), vae.score_samples(table))
    assert_allclose(
        loaded.inverse_transform(vae.transform(table)).to_numpy(float),
        vae.inverse_transform(vae.transform(table)).to_numpy(float),
    )
    state = copy.deepcopy(vae.__getstate__())
    column = state["_codec"]["columns"][0]
    column["knots"] = column["knots"][:, ::-1].copy()  # no longer increasing
    with pytest.raises(ValueError, match=r"column 'income'.*knots"):
        VAETransformer.__new__(VAETransformer).__setstate__(state)


def test_auto_maps_the_skewed_columns_only():
    table = skewed_table(600)
    vae = VAETransformer(1, scaling="auto", **QUICK).fit(table)
    codec = vae.codec_
    mapped = [c.name for c in codec.columns if c.knots is not None]
    # the long tails, not the moderately skewed counts nor the symmetric age
    assert mapped == ["income", "spend"]
    skews = [stats.skew(table[c]) for c in table]  # 2.7, 4.4, 1.25, -0.04
    assert min(skews[:2]) > 2.0 and 1.0 < skews[2] < 2.0 and abs(skews[3]) < 0.1
    # The mapped columns are those of scaling="quantile", knot for knot.
    everything = VAETransformer(1, scaling="quantile", **QUICK).fit(table).codec_
    for mine, theirs in zip(codec.columns[:2], everything.columns[:2], strict=True):
        assert_allclose(mine.knots, theirs.knots)
    # the default
    assert VAETransformer().scaling == "auto"


def test_the_skew_rule_is_scipy_s_skewness_with_weights_as_repeats():
    rng = np.random.default_rng(0)
    decided = set()
    for scale in (0.5, 1.0, 3.0):  # skewness about 0.1, 0.0, 3.2 (SKEWED: 2)
        values = rng.normal(size=50) + rng.exponential(scale, 50)
        counts = rng.integers(1, 4, 50)
        repeated = np.repeat(values, counts)
        expected = abs(stats.skew(repeated)) >= SKEWED
        decided.add(expected)
        assert is_skewed(values, counts.astype(float)) == expected
        assert is_skewed(1e200 * values) == (abs(stats.skew(values)) >= SKEWED)
    assert decided == {True, False}  # both sides of the limit
    assert not is_skewed(np.full(10, 3.0))
