"""
VAE and PCA latent spaces on digits
===================================

Both methods compress the 64 pixels of scikit-learn's 8x8 digits to two numbers per
image. PCA can only project onto a plane; the VAE's nonlinear encoder separates the
classes better, which the accuracy of a logistic regression on the two features
shows.
"""

# %%
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvae import VAETransformer

# On digits the fits are still improving a little when they stop (at max_iter, or
# after 60 epochs below); ConvergenceWarning says so for each fit. Silenced here to
# keep the output short.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

methods = {
    "PCA": PCA(n_components=2),
    "VAETransformer": VAETransformer(n_components=2, random_state=0),
}

fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
for ax, (name, reducer) in zip(axes, methods.items(), strict=True):
    Z_train = reducer.fit_transform(X_train)
    Z_test = reducer.transform(X_test)
    clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(Z_train, y_train)
    accuracy = clf.score(Z_test, y_test)
    points = ax.scatter(*Z_test.T, c=y_test, cmap="tab10", s=10)
    ax.set_title(f"{name}: test accuracy {accuracy:.3f}")
    ax.set_xlabel("latent 1")
    ax.set_ylabel("latent 2")
fig.colorbar(points, ax=axes, label="digit", ticks=range(10))
plt.show()

# %%
# The VAE's ``kl_per_component_`` says how much information each latent dimension
# carries, in nats: both are in use.
print(methods["VAETransformer"].kl_per_component_.round(2))
