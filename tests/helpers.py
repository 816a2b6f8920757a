"""Data and settings shared by the test modules (fixtures are in conftest.py)."""

import numpy as np
import pandas as pd

# Few epochs and a small network: the tests check behaviour, not the fit's quality.
FAST = dict(max_iter=10, hidden_layer_sizes=(32,), random_state=0)
N = 240


def make_table(n=N, seed=0):
    """One column of every supported dtype, driven by a 2-D latent structure."""
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, 2))
    return pd.DataFrame(
        {
            "f64": t[:, 0] + 0.1 * rng.normal(size=n),
            "f32": (t[:, 1] + 0.1 * rng.normal(size=n)).astype(np.float32),
            "i64": np.rint(5 + 2 * t[:, 0]).astype(np.int64),
            "flag": t[:, 1] > 0,
            "cat": pd.Categorical(
                np.where(t[:, 0] > 0.5, "hi", np.where(t[:, 0] < -0.5, "lo", "mid")),
                categories=["lo", "mid", "hi"],
                ordered=True,
            ),
            "obj": pd.Series(np.where(t[:, 1] > 0, "yes", "no"), dtype=object),
            "text": pd.Series(rng.choice(["a", "b", "c"], n)).astype("str"),
            "nint": pd.array(np.rint(t[:, 1]).astype(int), dtype="Int64"),
            "nbool": pd.array(t[:, 0] > 0, dtype="boolean"),
        }
    )


def with_holes(table, fraction=0.2, seed=1):
    """Remove entries at random: NaN, None and pd.NA as each dtype stores them."""
    rng = np.random.default_rng(seed)
    holed = table.copy()
    for column in holed.columns:
        rows = rng.random(len(holed)) < fraction
        if holed[column].dtype == bool:
            holed[column] = holed[column].astype(object)
            holed.loc[rows, column] = None
        elif holed[column].dtype == np.int64:
            holed[column] = holed[column].astype(float)
            holed.loc[rows, column] = np.nan
        else:
            holed.loc[rows, column] = pd.NA if column.startswith("n") else None
    return holed
