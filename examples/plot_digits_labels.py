"""
A 2-D latent with and without labels
====================================

Without labels, a VAE's latent is shaped by the pixels alone: with two
dimensions, similar-looking digits (3, 5, 8, 9) overlap. ``target_weight`` makes
``fit(X, y)`` train the latent to predict the labels too: the prior becomes one
Gaussian per class, and each row's loss gains ``target_weight`` times
-log p(y | z). ``transform`` still needs no labels.

The third panel keeps the labels of 10% of the training images; the others are
marked -1 (as in scikit-learn's semi-supervised estimators) and still train the
rest of the model.

Each panel gives the accuracy of a logistic regression trained on the 2-D
features (on the labelled training rows only, for the semi-supervised panel) and
the held-out ELBO, in nats per image: what the labels cost the density model. The
unsupervised fit holds out 10% of its rows for early stopping, while fits with
labels train on every row, which accounts for part of the ELBO differences here
(``benchmarks/labels.py`` compares three seeds: -137.3 without labels, -145.5 with
``target_weight=10``).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvae import VAETransformer

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
rng = np.random.default_rng(0)
few = rng.random(len(y_train)) < 0.1  # 10% of the training labels kept
y_few = np.where(few, y_train, -1)

panels = [
    ("no labels", VAETransformer(2, random_state=0).fit(X_train), None),
    (
        "all labels, target_weight=10",
        VAETransformer(2, target_weight=10, random_state=0).fit(X_train, y_train),
        None,
    ),
    (
        "10% of the labels, target_weight=10",
        VAETransformer(2, target_weight=10, random_state=0).fit(X_train, y_few),
        few,
    ),
]

fig, axes = plt.subplots(1, 3, figsize=(16, 5.5))
for ax, (title, vae, labelled) in zip(axes, panels, strict=True):
    Z_train, Z_test = vae.transform(X_train), vae.transform(X_test)
    rows = slice(None) if labelled is None else labelled
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(Z_train[rows], y_train[rows])
    accuracy = clf.score(Z_test, y_test)
    points = ax.scatter(Z_test[:, 0], Z_test[:, 1], c=y_test, cmap="tab10", s=8)
    # A few test images lie far out (ink on pixels that are almost always blank
    # in training, see the digits latent example): frame the middle 98%.
    low, high = np.percentile(Z_test, [1, 99], axis=0)
    margin = 0.15 * (high - low)
    ax.set_xlim(low[0] - margin[0], high[0] + margin[0])
    ax.set_ylim(low[1] - margin[1], high[1] + margin[1])
    ax.set_title(
        f"{title}\naccuracy {accuracy:.3f}\nheld-out ELBO {vae.score(X_test):.1f}"
    )
    ax.set_xlabel("latent 1")
for ax in axes[:1]:
    ax.set_ylabel("latent 2")
fig.colorbar(points, ax=axes, label="digit", ticks=range(10))
plt.show()

# %%
# With labels, each class has a place in the latent plane: its prior mean and
# spread, the moments of its training rows' posteriors. They are what
# ``sample(y=...)`` draws from (see the class-conditional example).
vae = panels[1][1]
prior = vae.module_.class_prior
print(np.round(prior.means.numpy(), 2))
