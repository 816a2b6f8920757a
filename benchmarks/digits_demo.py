"""VAE features against PCA features for a LogisticRegression on digits.

The README's main job. Digits ship with scikit-learn, so nothing is downloaded.
For each latent size k, the script fits VAETransformer (defaults, only n_components
and random_state set) and PCA on the training rows of a 75/25 stratified split, trains
LogisticRegression on the features, and prints test accuracy, plus each model's
held-out log-likelihood per row (the VAE's ELBO, a lower bound, against probabilistic
PCA's exact value), and the VAE's fit time.

PCA gets its best footing: it is fitted on the raw and on the standardised pixels,
and the better of the two accuracies is reported (the table shows both).

Usage: python benchmarks/digits_demo.py [--k 2 5 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvae import VAETransformer


def accuracy(fitted, X_train, X_test, y_train, y_test) -> float:
    """Test accuracy of LogisticRegression on the features of a fitted reducer."""
    clf = LogisticRegression(max_iter=5000).fit(fitted.transform(X_train), y_train)
    return clf.score(fitted.transform(X_test), y_test)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[2, 5, 10])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.seed
    )
    split = (X_train, X_test, y_train, y_test)
    print(f"digits: {X_train.shape[0]} train / {X_test.shape[0]} test rows, 64 pixels")
    print()
    print("|  k | VAE acc | PCA acc (raw / std) | VAE ELBO | PCA loglik | VAE fit s |")
    print("|---:|--------:|--------------------:|---------:|-----------:|----------:|")
    for k in args.k:
        vae = VAETransformer(n_components=k, random_state=args.seed)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            vae.fit(X_train)
        fit_seconds = time.perf_counter() - start
        vae_acc = accuracy(vae, *split)
        pca = PCA(k).fit(X_train)
        pca_raw = accuracy(pca, *split)
        pca_std = accuracy(make_pipeline(StandardScaler(), PCA(k)).fit(X_train), *split)
        pca_ll = pca.score(X_test)
        mark = "**" if vae_acc > max(pca_raw, pca_std) else ""
        print(
            f"| {k:2d} | {mark}{vae_acc:.3f}{mark} | {pca_raw:.3f} / {pca_std:.3f} "
            f"| {vae.score(X_test):8.1f} | {pca_ll:10.1f} | {fit_seconds:9.1f} |"
        )
    print()
    print("acc: LogisticRegression test accuracy on the k features (bold: VAE wins).")
    print("ELBO / loglik: held-out log-likelihood, nats per row; higher is better.")


if __name__ == "__main__":
    main()
