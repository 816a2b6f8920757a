"""
Benchmark summary: VAETransformer against PCA
=============================================

The benchmark suite (``make bench``) fits both methods on seven real datasets at
several latent sizes and compares them on held-out rows. This example reads its
committed results (``benchmarks/results/full.json``) and plots, for every dataset
and latent size, the VAE's margin over PCA (with PCA's better of raw and standardised
inputs) in downstream accuracy and in held-out log-likelihood.
"""

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

try:
    here = Path(__file__).parent
except NameError:  # run interactively
    here = Path.cwd()
results = pd.DataFrame(
    json.loads((here.parent / "benchmarks" / "results" / "full.json").read_text())
)
results["accuracy margin"] = results["acc_vae"] - results["acc_pca"]
results["log-likelihood margin (nats)"] = results["iwae_vae"] - results["ll_pca"]
print(results[["dataset", "k", "acc_pca", "acc_vae", "ll_pca", "iwae_vae"]].round(3))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for ax, metric in zip(
    axes, ["accuracy margin", "log-likelihood margin (nats)"], strict=True
):
    table = results.pivot(index="dataset", columns="k", values=metric)
    table.plot.bar(ax=ax, rot=0, width=0.8)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(f"VAE - PCA, {metric}")
    ax.legend(title="k", ncols=4)
axes[1].set_yscale("symlog", linthresh=1)
fig.suptitle("Above zero: the VAE is ahead of PCA's best footing")
plt.show()
