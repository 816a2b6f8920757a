"""
Reconstructions and samples
===========================

A VAE is also a generative model. Here it is trained on scikit-learn's 8x8 digits
with a 10-dimensional latent space. The top rows show held-out images and their
reconstructions, ``inverse_transform(transform(X))``, next to PCA's at the same
size; the bottom rows show new images drawn with ``sample``: z from the prior,
then the decoder's mean.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skvae import VAETransformer

X, y = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

vae = VAETransformer(n_components=10, random_state=0).fit(X_train)
pca = PCA(n_components=10).fit(X_train)

originals = X_test[:10]
rows = {
    "held-out": originals,
    "VAE": vae.inverse_transform(vae.transform(originals)),
    "PCA": pca.inverse_transform(pca.transform(originals)),
    "VAE samples": vae.sample(10, random_state=0, noise=False),
    "more samples": vae.sample(10, random_state=1, noise=False),
}

fig, axes = plt.subplots(len(rows), 10, figsize=(9, 5), layout="constrained")
for row_axes, (label, images) in zip(axes, rows.items(), strict=True):
    for ax, image in zip(row_axes, images, strict=True):
        ax.imshow(np.clip(image, 0, 16).reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
        ax.set_xticks([])
        ax.set_yticks([])
    row_axes[0].set_ylabel(label, rotation=0, ha="right", va="center")
plt.show()

# %%
# Mean squared reconstruction error on all held-out images, in pixel units:
for name, model in (("VAE", vae), ("PCA", pca)):
    error = np.mean((model.inverse_transform(model.transform(X_test)) - X_test) ** 2)
    print(f"{name}: {error:.2f}")
