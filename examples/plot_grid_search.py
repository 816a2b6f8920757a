"""
A Pipeline with GridSearchCV over the latent size
=================================================

``VAETransformer`` is a scikit-learn transformer, so it goes into a
:class:`~sklearn.pipeline.Pipeline` and its ``n_components`` is a hyperparameter like
any other. Here 3-fold cross-validation picks the latent size that gives a logistic
regression the best accuracy on digits. Default settings: every fit stops by
itself (early stopping), with no ConvergenceWarning.
"""

# %%
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skvae import VAETransformer

X, y = load_digits(return_X_y=True)
pipe = Pipeline(
    [
        ("vae", VAETransformer(random_state=0)),
        ("scale", StandardScaler()),
        ("clf", LogisticRegression(max_iter=500)),
    ]
)
search = GridSearchCV(pipe, {"vae__n_components": [2, 4, 8]}, cv=3, n_jobs=2)
search.fit(X, y)
print(search.best_params_, round(search.best_score_, 3))

# %%
results = pd.DataFrame(search.cv_results_)
fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
ax.errorbar(
    results["param_vae__n_components"],
    results["mean_test_score"],
    yerr=results["std_test_score"],
    marker="o",
    capsize=3,
)
ax.set_xlabel("n_components")
ax.set_ylabel("cross-validated accuracy")
ax.set_title("Latent size chosen by GridSearchCV")
plt.show()
