"""The torch model on its own: initialisation, bounds and their exactness."""

import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from skvae._model import VAE, init_from_pca, init_weights, iwae_bound


def _pca_started_vae(X, k, hidden=(32, 16)):
    pca = PCA(k).fit(X)
    with torch.device("meta"):
        module = VAE(X.shape[1], k, hidden, "gaussian")
    module = module.to_empty(device="cpu")
    init_weights(module, torch.Generator().manual_seed(0))
    init_from_pca(
        module,
        pca.mean_,
        pca.components_,
        pca.explained_variance_,
        pca.noise_variance_,
    )
    return module.double().eval(), pca


@pytest.mark.parametrize("k", [2, 5, 10])
def test_pca_start_is_exactly_probabilistic_pca(k):
    X = StandardScaler().fit_transform(load_breast_cancer().data)
    module, pca = _pca_started_vae(X, k)
    x = torch.tensor(X)
    with torch.no_grad():
        mu, log_var = module.encode(x)
        # The posterior mean is PPCA's E[z|x] and the decoder mean its W z + mean.
        W = pca.components_.T * np.sqrt(pca.explained_variance_ - pca.noise_variance_)
        M = W.T @ W + pca.noise_variance_ * np.eye(k)
        expected_mu = np.linalg.solve(M, W.T @ (X - pca.mean_).T).T
        np.testing.assert_allclose(mu.numpy(), expected_mu, atol=1e-6)
        np.testing.assert_allclose(
            log_var.numpy()[0],
            np.log(pca.noise_variance_ * np.diag(np.linalg.inv(M))),
            atol=1e-6,
        )
        # With the exact (diagonal) posterior the IWAE bound is log p(x) for any
        # K, and the ELBO's average is PPCA's log-likelihood.
        bound = iwae_bound(module, x, 16, torch.Generator().manual_seed(0))
    # Parameters are float32: agreement to float32 precision.
    np.testing.assert_allclose(bound.numpy(), pca.score_samples(X), rtol=1e-6)


def test_iwae_bound_tightens_with_more_samples():
    X = StandardScaler().fit_transform(load_breast_cancer().data)[:100]
    module, _ = _pca_started_vae(X, 2)
    x = torch.tensor(X)
    with torch.no_grad():  # perturb: the posterior is no longer exact
        module.encoder.log_var.bias.add_(1.0)
        eps = torch.randn(
            (64, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64
        )
        elbo = module.elbo(x, eps).mean()
        g = torch.Generator().manual_seed(1)
        k1 = iwae_bound(module, x, 1, g).mean()
        k100 = iwae_bound(module, x, 100, g).mean()
    assert k100 > elbo + 0.1
    assert abs(k1 - elbo) < 0.5  # K=1 is an estimate of the ELBO


def test_row_noise_belongs_to_the_row():
    from skvae._model import row_noise

    rows = np.random.default_rng(0).normal(size=(5000, 4))
    noise = row_noise(rows, 8, 3)
    assert noise.shape == (8, 5000, 3)
    np.testing.assert_array_equal(noise[4:], -noise[:4])  # antithetic pairs
    # The same row gets the same draws in any batch; other rows other draws.
    np.testing.assert_array_equal(row_noise(rows[10:12], 8, 3), noise[:, 10:12])
    assert not np.allclose(noise[:, 0], noise[:, 1])
    first = noise[:4].reshape(-1)
    assert abs(first.mean()) < 0.02 and abs(first.std() - 1) < 0.02


def test_the_iwae_bound_is_a_method_of_the_model():
    module = VAE(4, 2, (8,), "gaussian")
    init_weights(module, torch.Generator().manual_seed(0))
    x = torch.randn((5, 4), generator=torch.Generator().manual_seed(1))
    module = module.double()
    x = x.double()
    a = module.iwae_bound(x, 8, torch.Generator().manual_seed(2))
    b = iwae_bound(module, x, 8, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


@pytest.mark.parametrize("hidden", [(32, 16), ()])
def test_change_latent_moves_the_coordinates_not_the_reconstruction(hidden):
    # z_new = (z - shift) / scale: the posterior mean moves so, the decoder
    # undoes it, and the posterior's log-variance moves by -2 log(scale) (exactly
    # at the mean pre-activation of the head, to first order around it).
    X = StandardScaler().fit_transform(load_breast_cancer().data)
    module, _ = _pca_started_vae(X, 3, hidden)
    generator = torch.Generator().manual_seed(1)
    for p in module.parameters():  # away from the PCA start's exact layout
        p.data += 0.05 * torch.randn(p.shape, generator=generator)
    x = torch.as_tensor(X)
    shift, scale = np.array([0.5, -1.0, 2.0]), np.array([2.0, 0.5, 1.5])
    with torch.no_grad():
        mu, log_var = module.encode(x)
        decoded = module.decode(mu).numpy()
        moved = copy.deepcopy(module)
        moved.change_latent(shift, scale, x)
        new_mu, new_log_var = moved.encode(x)
        redecoded = moved.decode(new_mu).numpy()
    mu, new_mu = mu.numpy(), new_mu.numpy()
    np.testing.assert_allclose(new_mu, (mu - shift) / scale, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(redecoded, decoded, rtol=1e-9, atol=1e-9)
    change = (new_log_var - log_var).mean(dim=0).numpy()
    np.testing.assert_allclose(change, -2 * np.log(scale), atol=0.05)


def test_change_latent_refuses_a_model_with_a_target():
    from skvae._model import ClassPrior

    module = VAE(4, 2, (8,), "gaussian", target=ClassPrior(3, 2))
    with pytest.raises(ValueError, match="target"):
        module.change_latent(np.zeros(2), np.ones(2), torch.zeros(5, 4))


@pytest.mark.parametrize(
    "a, b",
    [(-1.0, 2.0), (1.5, 3.0), (5.0, np.inf), (-np.inf, -3.0), (-np.inf, np.inf)],
)
def test_truncated_normal_draws_follow_scipys_truncnorm(a, b):
    from scipy import stats

    from skvae._likelihoods import truncated_normal

    n = 100_000
    uniform = torch.rand(n, generator=torch.Generator().manual_seed(0)).double()
    bound = torch.full((n,), a, dtype=torch.float64), torch.full((n,), b).double()
    t = truncated_normal(*bound, uniform).numpy()
    reference = stats.truncnorm(a, b)
    assert a <= t.min() and t.max() <= b
    assert abs(t.mean() - reference.mean()) < 5 * reference.std() / np.sqrt(n)
    assert abs(t.std() / reference.std() - 1) < 0.02
    assert stats.kstest(t, reference.cdf).pvalue > 1e-3


def test_truncated_normal_far_outside_gives_the_nearer_bound():
    from skvae._likelihoods import truncated_normal

    a = torch.tensor([-40.0, 39.0], dtype=torch.float64)
    b = torch.tensor([-39.0, 40.0], dtype=torch.float64)
    t = truncated_normal(a, b, torch.tensor([0.5, 0.5], dtype=torch.float64))
    np.testing.assert_array_equal(t.numpy(), [-39.0, 39.0])


def test_gaussian_draws_within_bounds_keep_the_unbounded_stream_otherwise():
    from skvae._likelihoods import TableLikelihood

    likelihood = TableLikelihood(3).double()
    out = torch.zeros(500, 3, dtype=torch.float64)
    low = torch.tensor([-0.5, -np.inf, 0.0], dtype=torch.float64)
    high = torch.tensor([0.5, 0.0, np.inf], dtype=torch.float64)
    with torch.no_grad():
        free = likelihood.sample(out, torch.Generator().manual_seed(0))
        again = likelihood.sample(out, torch.Generator().manual_seed(0), None)
        bounds = (low, high)
        drawn = likelihood.sample(out, torch.Generator().manual_seed(0), bounds)
    np.testing.assert_array_equal(free.numpy(), again.numpy())
    assert torch.all((drawn >= low) & (drawn <= high))
    assert (drawn[:, 0] == 0.5).sum() == 0  # no pile-up at a bound
