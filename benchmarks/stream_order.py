"""Does partial_fit depend on the order of its batches? (issue 18, section 2)

Held-out ELBO (nats per row, higher is better) of a stream of ``partial_fit``
calls over the training rows, in an order that puts like rows together, against
the same rows shuffled and against ``fit`` in memory:

- iris in its stored order (species by species: the first batch is all one
  species), 15 batches of 7 rows;
- diabetes sorted by ``bmi``, 10 batches of 31 rows.

Each stream makes 1 and 5 passes over its batches. 30% of the rows are held out
(``train_test_split``, seed 0). Seeds are fixed: ``make stream-order`` gives the
same table on the same machine; on another CPU the digits may differ slightly.

Results: benchmarks/results/stream_order.{md,json}. About a minute on 2 cores.
"""

from __future__ import annotations

import warnings

import numpy as np
from common import environment, markdown_table, save_results
from sklearn.datasets import load_diabetes, load_iris
from sklearn.model_selection import train_test_split

from skvae import VAETransformer

PARAMS = dict(n_components=2, random_state=0)


def streamed(X: np.ndarray, n_batches: int, passes: int) -> VAETransformer:
    vae = VAETransformer(**PARAMS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sorted batches warn
        for _ in range(passes):
            for batch in np.array_split(X, n_batches):
                vae.partial_fit(batch)
    return vae


def cases():
    X, y = load_iris(return_X_y=True)
    train, test = train_test_split(
        np.arange(len(X)), test_size=0.3, random_state=0, stratify=y
    )
    yield "iris, stored order", X, np.sort(train), test, 15
    D, _ = load_diabetes(return_X_y=True)
    train, test = train_test_split(np.arange(len(D)), test_size=0.3, random_state=0)
    yield "diabetes, sorted by bmi", D, train[np.argsort(D[train, 2])], test, 10


def main() -> None:
    rows = []
    for name, X, ordered, test, n_batches in cases():
        shuffled = np.random.default_rng(0).permutation(ordered)
        fitted = VAETransformer(**PARAMS).fit(X[ordered]).score(X[test])
        for passes in (1, 5):
            rows.append(
                {
                    "data": name,
                    "passes": passes,
                    "ordered": streamed(X[ordered], n_batches, passes).score(X[test]),
                    "shuffled": streamed(X[shuffled], n_batches, passes).score(X[test]),
                    "fit": fitted,
                }
            )
    table = markdown_table(
        ["data", "passes", "ordered stream", "shuffled stream", "fit"],
        [
            [
                r["data"],
                r["passes"],
                *(f"{r[k]:.2f}" for k in ("ordered", "shuffled", "fit")),
            ]
            for r in rows
        ],
        "lrrrr",
    )
    report = "\n".join([*table, "", environment()])
    print(report)
    save_results("stream_order", rows, report)


if __name__ == "__main__":
    main()
