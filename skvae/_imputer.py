"""VAEImputer: the VAE as a scikit-learn imputer.

The model, its parameters and its training are VAETransformer's: the imputer fits
one (``vae_``) and completes each row from its observed entries with the importance-
weighted conditional mean of ``_inference.impute_encoded``.
"""

from __future__ import annotations

import functools
from numbers import Integral
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._base import BaseVAE, all_or_nothing, fill_doc
from ._transformer import VAETransformer
from ._validation import seed_from, validate_table

if TYPE_CHECKING:
    import torch


@fill_doc
class VAEImputer(BaseVAE):
    """Imputation of missing values with a variational autoencoder.

    Fits a :class:`VAETransformer` to the incomplete data (it learns from the
    observed entries only) and replaces every missing entry by its expected value
    given the row's observed entries: the conditional mean for a numeric column
    (which minimises the squared error, whatever the column's family; see
    ``column_values`` for integer columns), the likeliest level for a
    categorical one. Observed entries are returned unchanged. The conditional
    expectation is estimated by self-normalised importance sampling with the
    encoder, widened, as the proposal (Mattei & Frellsen, 2019), which uses the
    observed entries more fully than decoding the encoder's mean.

    Which entries are missing is evidence too. The model fitted underneath
    includes one of the holes, p(missing | z): a logistic regression per column
    on the latent point, kept only where it explains the column's holes better
    than its missing rate alone (a likelihood-ratio test at the 1% level), the
    model that ``VAETransformer.sample(missing=True)`` draws holes from. The
    importance weights include it, so where the holes depend on the values
    they hide (missing not at random: high incomes left blank, say), the fills
    lean the way the holes point; where they come at random, no regression is
    usually kept (the test rejects by chance once in a hundred columns) and the
    fills are those of the observed entries alone.

    Mixed tables go in as they are: a DataFrame with numeric, boolean, categorical
    and string columns comes back as a DataFrame with the same index, columns and
    dtypes, every hole filled. Missing values are NaN, None or ``pd.NA``.

    Parameters
    ----------
    n_components : int or None, default=None
        Dimension of the latent space. None takes half the number of columns,
        between 1 and 10: imputing a column from the others needs a latent space
        wide enough to carry their joint structure (measured on the tables of
        ``benchmarks/impute.py``, 2 dimensions were too few from 8 columns up).
        0 imputes from no latent: each column's own distribution (its mean, or
        its most likely level), as ``SimpleImputer`` does.

    {model_parameters}

    {training_parameters}

    sample_posterior : bool, default=False
        Whether to draw each imputation from the model's conditional distribution
        of the missing entries given the observed ones, instead of taking its
        mean; Gaussian draws are truncated to the column's training range.
        Draws are seeded by ``random_state``: with an int, ``transform``
        gives the same draws on every call. For multiple imputation, fit with
        several ``random_state`` values, as with
        :class:`~sklearn.impute.IterativeImputer`.

    column_values : bool or "auto", default="auto"
        Whether every filled entry is a value its column can hold. False: a
        numeric column gets its conditional mean as it is, as scikit-learn's
        imputers do, so a column of whole numbers can be filled with 2.37 and
        a 0/1 column that the model holds as levels because it has few values
        (``categorical_features="from_dtype"``) with the probability of 1 (an
        integer column then comes back as floats). True: a column of whole
        numbers (or of a recorded number of decimals: the ``"discrete"``
        family) gets its mean rounded to that grid, the nearest such value in
        squared error, and a numeric column held as levels its likeliest
        value. "auto": True for the columns of an integer dtype (``int64``,
        ``Int64``), which keep their dtype, and False for the others (a float
        column, such as an integer column with NaN holes). Categories, and
        numeric columns the user declared categorical, always get their
        likeliest level, and draws (``sample_posterior=True``) are values the
        column holds either way.

    add_indicator : bool, default=False
        Whether to append a :class:`~sklearn.impute.MissingIndicator`: one boolean
        column per feature that had missing values during fit, True where the
        entry was missing.

    Attributes
    ----------
    vae_ : VAETransformer
        The fitted model. Its ``transform``, ``sample`` and ``score_samples`` are
        available as on any VAETransformer.

    indicator_ : sklearn.impute.MissingIndicator or None
        Indicator of the missing entries, or None when ``add_indicator=False``.

    n_iter_ : int
        Number of training epochs run.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit. Defined only when ``X`` has feature
        names that are all strings.

    See Also
    --------
    VAETransformer : The model underneath, as a dimensionality reduction.
    sklearn.impute.SimpleImputer : Column mean, median or most frequent value.
    sklearn.impute.IterativeImputer : One regression per column, in rounds.
    sklearn.impute.KNNImputer : Mean of the nearest complete neighbours.

    Notes
    -----
    Without ``sample_posterior``, ``transform`` is deterministic and a row's
    imputation does not depend on the other rows passed with it. Rows without a
    missing entry are returned as they are, without running the model.

    A category that ``fit`` never saw is an observed value: it is kept in the
    output, and the model reads it as missing (``handle_unknown="ignore"``) or
    raises (``"error"``). A column keeps its training dtype when its values fit it
    (a float column of whole numbers for an integer column), and the dtype it came
    in with otherwise.

    References
    ----------
    Mattei, P.-A. and Frellsen, J. (2019). MIWAE: Deep Generative Modelling and
    Imputation of Incomplete Data Sets. ICML.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from skvae import VAEImputer
    >>> df = pd.DataFrame(
    ...     {
    ...         "age": [23.0, 41.0, np.nan, 35.0, 52.0, 29.0],
    ...         "plan": pd.Categorical(["a", "b", "b", None, "c", "a"]),
    ...         "member": [True, False, True, True, False, False],
    ...     },
    ...     index=[10, 11, 12, 13, 14, 15],
    ... )
    >>> imputer = VAEImputer(n_components=1, max_iter=5, random_state=0)
    >>> filled = imputer.fit_transform(df)
    >>> int(filled.isna().sum().sum())
    0
    >>> filled.index.tolist() == df.index.tolist()
    True
    >>> filled.dtypes.equals(df.dtypes)
    True
    >>> filled.loc[df["age"].notna(), "age"].equals(df["age"].dropna())
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseVAE._parameter_constraints,
        "n_components": [Interval(Integral, 0, None, closed="left"), None],
        "sample_posterior": ["boolean"],
        "column_values": ["boolean", StrOptions({"auto"})],
        "add_indicator": ["boolean"],
    }

    # Older files fill as they did then: a discrete column's mean rounded to its
    # grid, the likeliest of a column's levels.
    _added_parameters: ClassVar[dict] = {"column_values": True}

    def __init__(
        self,
        n_components: int | None = None,
        *,
        hidden_layer_sizes: ArrayLike = (256, 128),
        likelihood: str = "gaussian",
        categorical_features: ArrayLike | str | None = "from_dtype",
        families: str | dict = "auto",
        scaling: str = "auto",
        handle_unknown: str = "ignore",
        beta: float = 1.0,
        kl_warmup: int = 0,
        max_iter: int | Literal["auto"] = "auto",
        batch_size: int | Literal["auto"] = "auto",
        learning_rate: float = 1e-3,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 30,
        tol: float = 1e-4,
        device: str | torch.device = "auto",
        n_threads: int | Literal["auto"] | None = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: bool | int = False,
        sample_posterior: bool = False,
        column_values: bool | Literal["auto"] = "auto",
        add_indicator: bool = False,
    ) -> None:
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.likelihood = likelihood
        self.categorical_features = categorical_features
        self.families = families
        self.scaling = scaling
        self.handle_unknown = handle_unknown
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.sample_posterior = sample_posterior
        self.column_values = column_values
        self.add_indicator = add_indicator

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: None = None) -> VAEImputer:
        """Fit the VAE to the observed entries of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with missing values (NaN, None or ``pd.NA``). At least two rows.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : VAEImputer
            The fitted imputer.
        """
        with all_or_nothing(self):  # a failed fit leaves the previous imputer
            self.__dict__.update(self._fit(X))
        return self

    def _fit(self, X: Any) -> dict[str, Any]:
        """Fit the model and the indicator; return the fitted attributes."""
        X = validate_table(self, X, reset=True)
        # Every parameter of the model is the transformer's; an imputer trains
        # without labels (the transformer's target_weight stays 0).
        shared = VAETransformer().get_params()
        params = {
            name: value
            for name, value in self.get_params(deep=False).items()
            if name in shared
        }
        if self.n_components is None:
            params["n_components"] = min(max(X.shape[1] // 2, 1), 10)
        vae = VAETransformer(**params).fit(X)
        indicator = None
        if self.add_indicator:
            # MissingIndicator reads NaN only: give it the mask as NaN/0 floats, so
            # that None and pd.NA in string and category columns count too.
            from sklearn.impute import MissingIndicator

            indicator = MissingIndicator(error_on_new=False)
            indicator.fit(_nan_where(_missing(X)))
        return {"vae_": vae, "n_iter_": vae.n_iter_, "indicator_": indicator}

    def transform(self, X: ArrayLike) -> Any:
        """Fill the missing entries of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with missing values.

        Returns
        -------
        X_filled : ndarray or DataFrame of shape (n_samples, n_features_out)
            ``X`` with every missing entry imputed and every observed entry
            unchanged. A DataFrame when the imputer was fitted on a DataFrame and
            ``X`` is one, with the index and columns of ``X`` (each column in its
            training dtype where its values fit it); an array otherwise, float
            arrays keeping their dtype. With ``add_indicator=True``, the indicator
            columns follow.
        """
        check_is_fitted(self)
        X = validate_table(self, X, reset=False)
        if isinstance(X, pd.DataFrame) and not self.vae_.codec_.is_frame:
            # Fitted on an array: the frame is read, and returned, as one.
            X = validate_table(self, X.to_numpy(), reset=False)
        missing = _missing(X)
        rows = np.flatnonzero(missing.any(axis=1))
        out = X
        if rows.size:
            out = self._fill(X, rows, missing)
        elif isinstance(X, pd.DataFrame) or X.dtype.kind == "f":
            out = X.copy()
        if self.indicator_ is None:
            return out
        if len(missing):
            indicator = self.indicator_.transform(_nan_where(missing))
        else:  # MissingIndicator takes no empty input: no rows, no flags
            n_flags = len(self.indicator_.features_)
            indicator = np.zeros((0, n_flags), dtype=bool)
        if isinstance(out, pd.DataFrame):
            names = self.get_feature_names_out()[out.shape[1] :]
            flags = pd.DataFrame(indicator, index=out.index, columns=names)
            return pd.concat([out, flags], axis=1)
        return np.hstack([out, indicator.astype(out.dtype)])

    def score(self, X: ArrayLike, y: None = None) -> float:
        """Mean ELBO of the observed entries of the rows of ``X``, in nats.

        Higher is better; lets :class:`~sklearn.model_selection.GridSearchCV`
        tune the imputer without labels. See :meth:`VAETransformer.score`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score, with or without missing values.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            Mean of ``vae_.score_samples(X)``.
        """
        check_is_fitted(self)
        return self.vae_.score(X)

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> Any:
        """Get output feature names for transformation.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input features: ``feature_names_in_`` when None, or ``x0``, ``x1``, ...
            when the imputer was fitted without feature names.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The input feature names, then ``missingindicator_<name>`` for each
            indicator column.
        """
        check_is_fitted(self, "n_features_in_")
        names = _check_feature_names_in(self, input_features)
        if self.indicator_ is None:
            return names
        return np.concatenate([names, self.indicator_.get_feature_names_out(names)])

    def __sklearn_is_fitted__(self) -> bool:
        return "vae_" in vars(self)

    def _fill(self, X: Any, rows: np.ndarray, missing: np.ndarray) -> Any:
        import torch

        from ._holes import log_prob
        from ._inference import (
            N_IMPUTE_DRAWS,
            encode_checked,
            impute_encoded,
            inference_threads,
            numpy_rng,
        )

        vae = self.vae_
        codec = vae.codec_
        subset = X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]
        values, observed = encode_checked(
            codec, subset, self.likelihood, self.handle_unknown
        )
        generator = None
        if self.sample_posterior:
            seed = seed_from(self.random_state)
            generator = torch.Generator(device=vae.device_).manual_seed(seed)
        holes = vae.hole_model_  # None: saved before the hole model
        selection = None
        if holes is not None and "pvalue" in holes:  # absent: an untested model
            selection = functools.partial(log_prob, holes)
        with inference_threads(vae.n_threads, vae.module_, len(values), N_IMPUTE_DRAWS):
            encoded = impute_encoded(
                vae.module_,
                values,
                observed,
                generator,
                codec.encoded_range(),
                selection,
                missing[rows][:, codec.order],  # an unseen category is no hole
            )
        rng = None if generator is None else numpy_rng(generator)
        return codec.fill(
            X,
            rows,
            encoded,
            missing,
            samples=self.sample_posterior,
            rng=rng,
            column_values=self.column_values,
        )


def _missing(X: Any) -> np.ndarray:
    """Boolean mask of the missing entries (NaN, None, pd.NA) of a validated table."""
    if isinstance(X, pd.DataFrame):
        return X.isna().to_numpy()
    return np.isnan(X) if X.dtype.kind == "f" else pd.isna(X)


def _nan_where(missing: np.ndarray) -> np.ndarray:
    return np.where(missing, np.nan, 0.0)
