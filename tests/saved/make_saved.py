"""Write the saved models of tests/test_saved.py (run once per state format).

Each model is fitted on generated data, saved with pickle and skops, and its
outputs on that data are stored beside it, so that a later skvae can be checked
to load the file and give the same outputs. The files of state format 2 were
written by skvae 0.x main at commit e951e25, before the house refactor:

    .venv/bin/python tests/saved/make_saved.py tests/saved
"""

import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from skvae import VAEImputer, VAETransformer

SMALL = dict(hidden_layer_sizes=(16, 8), max_iter=8, random_state=0)


def table(n=120, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, 2))
    df = pd.DataFrame(
        {
            "x": t[:, 0] + 0.1 * rng.normal(size=n),
            "count": np.rint(5 + 2 * t[:, 1]).astype(np.int64),
            "flag": t[:, 1] > 0,
            "plan": pd.Categorical(np.where(t[:, 0] > 0.3, "hi", "lo")),
            "tier": pd.Series(rng.choice(["a", "b", "c"], n), dtype=object),
        }
    )
    holes = rng.random(n) < 0.15
    df.loc[holes, "x"] = np.nan
    return df


def array(n=120, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)) @ rng.normal(size=(3, 5))


def models():
    X, df = array(), table()
    labels = np.where(X[:, 0] > 0, "up", "down")
    streamed = VAETransformer(2, hidden_layer_sizes=(16,), random_state=0)
    for part in np.array_split(X, 3):
        streamed.partial_fit(part)
    holed = df.copy()
    return {
        "array": (VAETransformer(2, **SMALL).fit(X), X),
        "table": (VAETransformer(2, **SMALL).fit(df), df),
        "labels": (VAETransformer(2, target_weight=5.0, **SMALL).fit(X, labels), X),
        "stream": (streamed, X),
        "imputer": (VAEImputer(2, **SMALL).fit(holed), holed),
    }


def outputs(model, X):
    """The outputs a loaded model must reproduce, as arrays."""
    if isinstance(model, VAEImputer):
        filled = model.transform(X)
        return {"filled": filled["x"].to_numpy(dtype=float)}
    Z = model.transform(X)
    back = model.inverse_transform(Z)
    drawn = model.sample(4, random_state=0)
    first = back.columns[0] if isinstance(back, pd.DataFrame) else 0
    return {
        "transform": Z,
        "score_samples": model.score_samples(X),
        "inverse_transform": np.asarray(
            back[first] if isinstance(back, pd.DataFrame) else back, dtype=float
        ),
        "sample": np.asarray(
            drawn[first] if isinstance(drawn, pd.DataFrame) else drawn, dtype=float
        ),
    }


def main(folder):
    import skops.io as sio

    folder = Path(folder)
    for name, (model, X) in models().items():
        (folder / f"{name}.pkl").write_bytes(pickle.dumps(model))
        sio.dump(model, folder / f"{name}.skops")
        np.savez(folder / f"{name}.npz", **outputs(model, X))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
