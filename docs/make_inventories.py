"""Write the fallback intersphinx inventories in ``_inventories/``.

The docs link to scikit-learn, PyTorch, NumPy, pandas and Python. Sphinx reads each
project's live ``objects.inv`` when it can reach it; on a machine without internet
access it falls back to these small inventories, which list the names these docs
refer to and point at the same public pages. Add a name here when the docs start to
link to it, then run ``python docs/make_inventories.py``.
"""

from __future__ import annotations

import zlib
from pathlib import Path

OUT = Path(__file__).parent / "_inventories"

SKLEARN = [
    "sklearn.pipeline.Pipeline",
    "sklearn.pipeline.make_pipeline",
    "sklearn.model_selection.GridSearchCV",
    "sklearn.model_selection.cross_val_score",
    "sklearn.decomposition.PCA",
    "sklearn.decomposition.FactorAnalysis",
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.preprocessing.OneHotEncoder",
    "sklearn.preprocessing.StandardScaler",
    "sklearn.preprocessing.MinMaxScaler",
    "sklearn.impute.SimpleImputer",
    "sklearn.impute.IterativeImputer",
    "sklearn.compose.ColumnTransformer",
    "sklearn.linear_model.LogisticRegression",
    "sklearn.base.clone",
]
# Link texts of the labels above, as scikit-learn's own inventory gives them.
TITLES = {
    "df_output_transform": "Introducing the set_output API",
    "sphx_glr_auto_examples_miscellaneous_plot_set_output.py": (
        "Introducing the set_output API"
    ),
    "metadata_routing": "Metadata Routing",
}
INVENTORIES = {
    "sklearn": (
        "scikit-learn",
        [(name, "py:class", "modules/generated/$.html#$") for name in SKLEARN]
        # Labels that the docstrings of inherited methods (set_output) refer to.
        + [
            (
                "df_output_transform",
                "std:label",
                "auto_examples/miscellaneous/"
                "plot_set_output.html#sphx-glr-auto-examples-miscellaneous-plot-set-output-py",
            ),
            (
                "sphx_glr_auto_examples_miscellaneous_plot_set_output.py",
                "std:label",
                "auto_examples/miscellaneous/plot_set_output.html"
                "#sphx-glr-auto-examples-miscellaneous-plot-set-output-py",
            ),
            ("metadata_routing", "std:label", "metadata_routing.html#metadata-routing"),
        ],
    ),
    "torch": (
        "PyTorch",
        [
            ("torch.nn.Module", "py:class", "generated/torch.nn.Module.html#$"),
            ("torch.device", "py:class", "tensor_attributes.html#$"),
            ("torch.set_num_threads", "py:function", "generated/$.html#$"),
        ],
    ),
    "numpy": (
        "NumPy",
        [
            ("numpy.ndarray", "py:class", "reference/generated/$.html#$"),
            ("numpy.random.RandomState", "py:class", "reference/random/legacy.html#$"),
        ],
    ),
    "pandas": (
        "pandas",
        [
            ("pandas.DataFrame", "py:class", "reference/api/$.html#$"),
            ("pandas.DataFrame.fillna", "py:method", "reference/api/$.html#$"),
            ("pandas.Categorical", "py:class", "reference/api/$.html#$"),
        ],
    ),
    "python": (
        "Python",
        [
            ("pickle", "py:module", "library/pickle.html#module-$"),
            ("logging", "py:module", "library/logging.html#module-$"),
        ],
    ),
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for key, (project, entries) in INVENTORIES.items():
        header = (
            "# Sphinx inventory version 2\n"
            f"# Project: {project}\n"
            "# Version: stable\n"
            "# The remainder of this file is compressed using zlib.\n"
        )
        body = "".join(
            f"{name} {role} {-1 if role == 'std:label' else 1} {uri} "
            f"{TITLES.get(name, '-')}\n"
            for name, role, uri in entries
        )
        (OUT / f"{key}.inv").write_bytes(header.encode() + zlib.compress(body.encode()))


if __name__ == "__main__":
    main()
