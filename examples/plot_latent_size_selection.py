"""
Choosing the latent size without labels
=======================================

``score`` returns the mean ELBO of the rows, a lower bound on their log-likelihood in
nats. Cross-validating it chooses ``n_components`` with no labels at all, as
scikit-learn's own example does with PCA's exact log-likelihood. Both are measured in
the same units on the same held-out folds, so the curves can be compared directly.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import cross_val_score

from skvae import VAETransformer

X, _ = load_digits(return_X_y=True)
X = X + np.random.default_rng(0).uniform(0, 1, X.shape)  # dequantise the counts
sizes = [1, 2, 4, 8, 16]

vae_scores = [
    cross_val_score(VAETransformer(k, random_state=0), X, cv=3).mean() for k in sizes
]
pca_scores = [cross_val_score(PCA(k), X, cv=3).mean() for k in sizes]

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.plot(sizes, vae_scores, "o-", label="VAETransformer: held-out ELBO")
ax.plot(sizes, pca_scores, "s-", label="PCA: held-out log-likelihood")
ax.set_xscale("log", base=2)
ax.set_xlabel("n_components")
ax.set_ylabel("nats per image (higher is better)")
ax.legend()
ax.set_title("Label-free choice of the latent size (digits)")
plt.show()

best = sizes[int(np.argmax(vae_scores))]
print(f"best VAE size: {best}; best PCA size: {sizes[int(np.argmax(pca_scores))]}")

# %%
# The ELBO is a lower bound, yet it is above PCA's exact log-likelihood at every
# size: the nonlinear model describes the images better. After a fit,
# ``kl_per_component_`` shows which latent dimensions carry information.
vae = VAETransformer(best, random_state=0).fit(X)
print(vae.kl_per_component_.round(2))
