"""
Class-conditional synthetic rows
================================

A VAE fitted with class labels (``target_weight > 0``) has one Gaussian per class
in its latent space. ``sample(n, y=c)`` draws z from class c's Gaussian and
decodes it, so the rows come out of that class: digits of the requested kind
here, rows of a minority class for oversampling in the benchmarks.

A logistic regression trained on the real pixels checks the samples: the share
of each class's samples it assigns to the requested class.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from skvae import VAETransformer

X, y = load_digits(return_X_y=True)
vae = VAETransformer(8, target_weight=10, random_state=0).fit(X, y)

n_per_class = 8
wanted = np.repeat(vae.classes_, n_per_class)
rows = vae.sample(len(wanted), y=wanted, random_state=0, noise=False)

fig, axes = plt.subplots(10, n_per_class, figsize=(n_per_class, 10))
for ax, image in zip(axes.ravel(), rows, strict=True):
    ax.imshow(image.reshape(8, 8), cmap="gray_r")
    ax.set_xticks([])
    ax.set_yticks([])
for digit, ax in zip(vae.classes_, axes[:, 0], strict=True):
    ax.set_ylabel(str(digit), rotation=0, labelpad=12)
fig.suptitle("vae.sample(80, y=[0]*8 + [1]*8 + ... + [9]*8, noise=False)")
plt.show()

# %%
# How often does a classifier trained on the real images agree with the class
# each sample was drawn for? With ``noise=True`` (the default) the rows carry the
# decoder's per-pixel noise as well, like real images do.
judge = LogisticRegression(max_iter=5000).fit(X, y)
many = np.repeat(vae.classes_, 100)
for noise in (False, True):
    drawn = vae.sample(len(many), y=many, random_state=1, noise=noise)
    agree = judge.predict(drawn) == many
    per_class = [agree[many == c].mean() for c in vae.classes_]
    print(f"noise={noise}: {agree.mean():.3f} overall;", np.round(per_class, 2))

# %%
# A model fitted without labels has no classes to draw from, and says so:
try:
    VAETransformer(2, random_state=0).fit(X).sample(3, y=1)
except ValueError as error:
    print(error)
