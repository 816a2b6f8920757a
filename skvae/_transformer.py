"""VAETransformer: the scikit-learn face of the VAE.

Parameters, their checks and the public methods live here; the machinery lives
in the modules below: the set-up of a fit (``_setup``), training (``_training``),
streaming (``_streaming``), dask (``_dask``), inference (``_inference``),
persistence (``_persistence``) and the labels (``_targets``).

The methods import the machinery when they first run: ``import skvae`` leaves
PyTorch (about 2.5 s and 200 MB) to the first fit or load.
"""

from __future__ import annotations

import functools
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.base import ClassNamePrefixFeaturesOutMixin, _fit_context
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._base import BaseVAE, all_or_nothing, fill_doc
from ._compat import supports_callbacks
from ._validation import float_dtype, is_dask_collection, seed_from

if TYPE_CHECKING:
    import torch

    from ._tabular import TableCodec


def _dask_aware(method: Any) -> Any:
    """Send dask input of ``method`` to ``_dask.dask_apply``, before any wrapper.

    scikit-learn's set_output wrapper turns what ``transform`` returns into a
    pandas DataFrame, which would compute a lazy result: dask input must not
    reach it.
    """

    @functools.wraps(method)
    def wrapper(self: Any, X: Any, *args: Any, **kwargs: Any) -> Any:
        if is_dask_collection(X):
            from ._dask import dask_apply

            return dask_apply(self, method.__name__, X)
        return method(self, X, *args, **kwargs)

    return wrapper


def _without_labels(estimator: Any) -> bool:
    """``partial_fit`` trains without labels: only there with target_weight=0."""
    if estimator.target_weight > 0:
        raise AttributeError(
            "partial_fit trains without labels and is only available with "
            f"target_weight=0 (this estimator has target_weight="
            f"{estimator.target_weight:g}); use fit(X, y) to train on labels."
        )
    return True


@fill_doc
class VAETransformer(*supports_callbacks(), ClassNamePrefixFeaturesOutMixin, BaseVAE):
    """Variational autoencoder as a scikit-learn transformer.

    The encoder maps each row to a Gaussian posterior
    q(z|x) = N(mu(x), diag sigma^2(x)) over ``n_components`` latent dimensions;
    ``transform`` returns the posterior mean mu(x). The decoder maps z back to the
    parameters of p(x|z): a Gaussian with a learned per-feature variance, or a
    Bernoulli. Training minimises the negative evidence lower bound (ELBO),
    reconstruction negative log-likelihood + ``beta`` * KL(q(z|x) || N(0, I)),
    with Adam on mini-batches, using the reparameterisation z = mu + sigma * eps.

    Encoder and decoder each have a linear path beside their MLP. With the Gaussian
    likelihood the model starts at the probabilistic PCA solution of the training
    rows (linear paths from PCA, MLP outputs at zero), whose ELBO equals PCA's
    log-likelihood, and training moves on from there. Together with early stopping,
    which counts the start as a candidate, this guards against posterior collapse
    and against ending up a worse density model than PCA.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the latent space (the number of features ``transform``
        returns). 0 fits the model with no latent: the decoder's output is one
        distribution per column, independent of the other columns (for Gaussian
        columns, factor analysis with no factors), so ``transform`` returns no
        columns and ``score`` is the baseline every latent dimension has to beat,
        as with ``PCA(n_components=0)``.

    {model_parameters}

    target_weight : float, default=0.0
        Weight of the labels in ``fit(X, y)``. 0: unsupervised, ``y`` is ignored.
        Above 0, the latent is trained to predict ``y`` as well as to reconstruct
        ``X``: each row's loss gains ``target_weight`` times -log p(y | z).
        ``transform`` never needs ``y``. What ``y`` holds decides the head, as
        scikit-learn's ``type_of_target`` reads it:

        - class labels (``"binary"``, ``"multiclass"``): the prior over z becomes
          one Gaussian per class, p(z | y) = N(m_y, diag s_y^2), set after every
          epoch to the moments of the class's encoded rows (rows without a label
          count with their class probabilities, as in EM); p(y | z) is its Bayes
          posterior, and ``sample(y=...)`` draws rows of a class.
        - continuous targets (1-D or 2-D floats): a linear Gaussian head predicts
          the standardised targets from z.

        Rows without a label still train the rest of the model (semi-supervised
        learning): mark them as scikit-learn's semi-supervised estimators do, -1
        in numeric class labels, NaN or None in any ``y``. When only some rows
        have labels, every mini-batch step also takes a mini-batch of labelled
        rows, so ``target_weight`` weighs the labels as if every row had one. At
        1 with every row labelled, training maximises a bound on log p(x, y);
        larger values favour the labels over the density of ``X``. Tune it with
        ``GridSearchCV`` (values from 1 to 100 are typical).

    {training_parameters}

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit. Defined only when ``X`` has feature
        names that are all strings.

    is_categorical_ : ndarray of bool of shape (n_features,)
        Which columns were treated as categorical.

    categories_ : list of (ndarray or None)
        For each column, its levels in the order of the model's outputs, or None
        for a continuous column.

    column_likelihoods_ : ndarray of str of shape (n_features,)
        The likelihood of each column: for continuous columns their family
        (``"gaussian"``, ``"point_mass"`` or ``"discrete"``, see ``families``)
        or ``"bernoulli"`` (``likelihood="bernoulli"``); ``"bernoulli"`` for
        two-level and ``"categorical"`` for other categorical columns.

    codec_ : TableCodec
        How each column is encoded for the model: its kind, statistics and
        levels (the state behind ``is_categorical_``, ``categories_``,
        ``column_likelihoods_``, ``mean_`` and ``scale_``). For skvae's own
        modules (the imputer, dask, ONNX); its interface may change between
        versions.

    hole_model_ : dict or None
        The model of which entries are missing, given a row's latent point,
        that ``sample(missing=True)`` draws holes from and
        :class:`VAEImputer` conditions on: per column (in ``codec_``'s
        grouped order) its training share missing and a logistic regression
        on z, kept where a likelihood-ratio test rejects the share alone. None
        for models saved before it. For skvae's own modules; its interface may
        change between versions.

    mean_ : ndarray of shape (n_features,)
        Per-column mean of the observed values, subtracted before encoding
        (zeros for ``"bernoulli"`` and for categorical columns).

    scale_ : ndarray of shape (n_features,)
        Scale divided out of each column before encoding: its standard deviation
        over the observed values with ``scaling="standard"``, ``"quantile"`` and
        ``"auto"`` (whose maps to normal scores come after it), one shared scale
        with ``"global"`` (ones for ``"bernoulli"`` and categorical columns, and
        for constant columns under the per-column scalings).

    module_ : torch.nn.Module
        The trained VAE (``encoder``, ``decoder``, ``likelihood``). It is kept in
        float64 after training so that ``transform`` gives the same result for a row
        whatever batch it comes in.

    device_ : torch.device
        Device the model lives on.

    n_iter_ : int
        Number of epochs run by ``fit`` (the last one possibly in part, when early
        stopping ends it after an evaluation period), plus one for each
        ``partial_fit`` call.

    n_threads_ : int
        Number of torch threads the last ``fit`` or ``partial_fit`` trained on:
        ``n_threads``, or what ``"auto"`` chose (see ``n_threads``).

    n_samples_seen_ : int
        Number of rows trained on: those passed to ``fit``, plus those of every
        ``partial_fit`` call since.

    loss_curve_ : list of float
        Training negative ELBO per evaluation period (an epoch, or about 2**20 rows
        of one on larger data; see ``n_iter_no_change``), in nats per row, in the
        units of ``X`` (comparable with ``-score(X)``).

    validation_scores_ : list of float or None
        Validation ELBO per evaluation period, in nats per row, in the units of
        ``X`` (higher is better). None unless ``early_stopping=True``, and after
        ``partial_fit``, which holds out no rows.

    best_validation_score_ : float or None
        Validation ELBO of the weights kept: the best epoch's, or the starting
        point's when no epoch beat it. None unless ``early_stopping=True``, and
        after ``partial_fit``.

    classes_ : ndarray of shape (n_classes,) or None
        The class labels of ``y`` when fitted with ``target_weight > 0`` and
        class labels; None otherwise.

    target_type_ : str or None
        What ``y`` was read as (scikit-learn's ``type_of_target``: ``"binary"``,
        ``"multiclass"``, ``"continuous"`` or ``"continuous-multioutput"``), or
        None when fitted without labels.

    kl_per_component_ : ndarray of shape (n_components,)
        Mean KL divergence of each latent dimension from the prior on the training
        data (after ``partial_fit``: on the last batch), in nats: the information
        the dimension carries. A dimension with a KL near zero carries none
        (posterior collapse).

    n_components_ : int
        The latent dimension, ``n_components``, as PCA's attribute of that name.

    explained_variance_ : ndarray of shape (n_components,)
        As PCA's: the variance of each column of ``transform(X)`` over the training
        rows (after ``partial_fit``: the last batch), with n - 1 in the
        denominator. On the prior's unit scale: near 0 for a dimension the model
        does not use, up to about 1 for one that the data decide (the "active
        units" statistic of Burda et al., 2016). Unlike PCA's, it is not in the
        units of ``X`` and the dimensions are not sorted by it.

    explained_variance_ratio_ : ndarray of shape (n_components,)
        Each dimension's share of the information the latent carries:
        ``kl_per_component_ / kl_per_component_.sum()``. It sums to 1 (PCA's sums
        to the share of the data's variance kept); its cumulative sum over the
        dimensions sorted by it tells how many carry most of the information.

    noise_variance_ : ndarray of shape (n_features,)
        Each column's variance around the decoder's mean, in the units of ``X``:
        the Gaussian likelihood's learned variance, as factor analysis's
        ``noise_variance_`` (PCA's is one number shared by all columns). NaN for
        ``"bernoulli"`` and categorical columns, which have no variance parameter.

    See Also
    --------
    VAEImputer : The same model as an imputer of missing values.
    sklearn.decomposition.PCA : Linear dimensionality reduction; probabilistic PCA
        is the linear special case of this model.
    sklearn.decomposition.FactorAnalysis : Linear Gaussian latent model with a
        per-feature noise variance.

    Notes
    -----
    ``transform`` is deterministic: it returns the posterior mean, computed in eval
    mode, in float64, in bounded batches. ``score_samples`` estimates the ELBO with
    8 noise draws (4 antithetic pairs) of each row's own, a function of the row's
    values, so it is deterministic and a row's score does not depend on the other
    rows.

    Missing values (NaN, None, ``pd.NA``) are allowed in every column, in fit and
    in every method that takes ``X``. Training leaves them out of the
    reconstruction term, so the model learns from the observed entries only; the
    encoder reads a missing entry as the column's training mean. ``score_samples``
    then bounds the likelihood of a row's observed entries, and
    ``inverse_transform(transform(X))`` reconstructs every entry. To fill the
    holes and keep everything else, use :class:`VAEImputer`, which also conditions
    on the observed entries more fully than one pass through the encoder's mean.

    Fitted on a DataFrame, ``inverse_transform`` and ``sample`` return a DataFrame
    with the same columns and dtypes (integers rounded, categories with the same
    levels); fitted on an array, they return an array. With the Gaussian likelihood,
    their continuous values stay within each column's range in the training data:
    decoder means are clipped to it and ``sample``'s draws truncated to it.

    References
    ----------
    Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes. ICLR.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> vae = VAETransformer(n_components=2, max_iter=5, random_state=0)
    >>> Z = vae.fit_transform(X)
    >>> Z.shape
    (1797, 2)
    >>> vae.inverse_transform(Z).shape
    (1797, 64)
    >>> vae.sample(3, random_state=0).shape
    (3, 64)

    Mixed column types and missing values, from a DataFrame:

    >>> import numpy as np
    >>> import pandas as pd
    >>> df = pd.DataFrame({
    ...     "age": [23.0, 41.0, np.nan, 35.0, 52.0, 29.0, 61.0],
    ...     "plan": pd.Categorical(["a", "b", "b", None, "c", "a", "b"]),
    ...     "member": [True, False, True, True, False, False, True],
    ... })
    >>> vae = VAETransformer(n_components=1, max_iter=5, random_state=0).fit(df)
    >>> vae.column_likelihoods_.tolist()  # ages: whole numbers, more than 5
    ['discrete', 'categorical', 'bernoulli']
    >>> [str(dtype) for dtype in vae.sample(2, random_state=0).dtypes]
    ['float64', 'category', 'bool']
    >>> vae.inverse_transform(vae.transform(df)).shape
    (7, 3)
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseVAE._parameter_constraints,
        "n_components": [Interval(Integral, 0, None, closed="left")],
        "target_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components: int = 2,
        *,
        hidden_layer_sizes: ArrayLike = (256, 128),
        likelihood: str = "gaussian",
        categorical_features: ArrayLike | str | None = "from_dtype",
        families: str | dict = "auto",
        scaling: str = "auto",
        handle_unknown: str = "ignore",
        target_weight: float = 0.0,
        beta: float = 1.0,
        kl_warmup: int = 0,
        max_iter: int | Literal["auto"] = "auto",
        batch_size: int | Literal["auto"] = "auto",
        learning_rate: float = 1e-3,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        device: str | torch.device = "auto",
        n_threads: int | Literal["auto"] | None = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: bool | int = False,
    ) -> None:
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.likelihood = likelihood
        self.categorical_features = categorical_features
        self.families = families
        self.scaling = scaling
        self.handle_unknown = handle_unknown
        self.target_weight = target_weight
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

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> VAETransformer:
        """Fit the VAE to ``X``, and to ``y`` when ``target_weight > 0``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, at least two rows. A dask DataFrame or Array is
            streamed partition by partition, never loaded whole (see the user
            guide's "Dask collections").

        y : array-like of shape (n_samples,) or (n_samples, n_targets), default=None
            Targets, used only when ``target_weight > 0`` (then required): class
            labels, or continuous targets. -1 (in numeric class labels), NaN or
            None mark rows without a label, which train the rest of the model.
            Ignored when ``target_weight=0``.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row's terms in the loss, and in the
            column statistics and the PCA start. An integer weight acts exactly as
            repeating the row; a row of weight 0 is left out. None: all 1.

        Returns
        -------
        self : VAETransformer
            The fitted estimator.

        Notes
        -----
        A fit is all or nothing: if it fails or is interrupted before its first
        epoch ends, the estimator is left as it was (the previous model, or
        unfitted). Interrupted later, it keeps the best weights so far and warns.

        The fit does not depend on the order of the rows: equal rows are merged
        into one of their summed weight, and the rows are put in an order given
        by their values before the validation split and the mini-batches.
        """
        if self.target_weight > 0 and y is None:
            raise ValueError(
                f"VAETransformer with target_weight={self.target_weight:g} requires y "
                "to be passed, but the target y is None. Pass y to fit (in a "
                "Pipeline, pipe.fit(X, y)), or set target_weight=0 to train "
                "without labels."
            )
        from ._callbacks import fit_hooks

        hooks = fit_hooks(self, X, y)  # scikit-learn's callbacks, where it has them
        with all_or_nothing(self):  # a failed fit leaves the previous model
            if is_dask_collection(X):  # streamed partition by partition
                from ._dask import check_dask_fit, fit_dask

                check_dask_fit(self, y, sample_weight)
                fitted = fit_dask(self, X, hooks)
            else:
                from ._setup import fit_arrays

                fitted = fit_arrays(self, X, y, sample_weight, hooks)
            # fit starts afresh: no optimizer state from earlier partial_fit calls.
            self.__dict__.pop("_stream", None)
            self.__dict__.update(fitted)
            if hooks is not None:  # on the whole model; if it fails, the fit does
                hooks.end(fitted)
        return self

    @available_if(_without_labels)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self,
        X: ArrayLike,
        y: None = None,
        sample_weight: ArrayLike | None = None,
    ) -> VAETransformer:
        """Train on one batch of rows: one pass over it in mini-batches.

        The first call fits the column codec (scaling statistics, categories) and
        starts the model (at probabilistic PCA of the batch for a Gaussian
        likelihood) and the optimizer from this batch; later calls continue with
        the same optimizer state, and need the same columns. Each call updates
        the column statistics with its rows (as ``StandardScaler.partial_fit``)
        and re-expresses the model in the new units, keeping what it learned;
        then it moves the latent space and the noise variances to their
        closed-form values over the rows so far and the batch (the user guide's
        large data page says how), so that a batch unlike those before it is
        not encoded far out or scored with their noise.
        On a model fitted with ``fit``, the first call continues from its
        weights with a new optimizer. ``n_samples_seen_`` and ``n_iter_`` count
        the rows and calls. There is no early stopping: the caller decides when
        to stop, for instance on ``score`` of held-out rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of rows. The first batch needs at least two rows and fixes
            the categories of each column and the PCA start: give it every
            level. A later batch of no rows (a partition a filter left empty),
            or whose rows all have weight 0, changes nothing. Shuffle the rows
            across batches: the network learns by gradient steps and favours
            what the latest batches show.

        y : None
            Ignored; present for API consistency. ``partial_fit`` trains without
            labels, and is only available with ``target_weight=0``.

        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row's terms in the loss and in the column statistics
            (and, in the first call, in the PCA start). None: all 1. Weights act
            within the batch: only their ratios matter, and the batch counts by
            its rows in the running statistics whatever their scale.

        Returns
        -------
        self : VAETransformer
            The estimator, trained on one more batch.
        """
        from ._callbacks import fit_hooks
        from ._streaming import (
            first_batch,
            next_batch,
            restore_stream,
            stream_batch,
            stream_state,
        )

        hooks = fit_hooks(self, X, y, task_name="partial_fit")
        if hooks is not None:
            hooks.begin()
        with all_or_nothing(self):  # a failed batch leaves the model as it was
            stream, state = getattr(self, "_stream", None), None  # None after fit
            if not hasattr(self, "module_"):
                fitted, batch = first_batch(self, X, sample_weight)
            else:
                current = {
                    "_stream": stream,
                    **{
                        name: getattr(self, name)
                        for name in ("_codec", "module_", "n_iter_", "n_samples_seen_")
                    },
                    "loss_curve_": self.loss_curve_,
                    "_holes": getattr(self, "_holes", None),  # None: saved before
                }
                fitted, batch = next_batch(self, current, X, sample_weight)
            if batch is not None:  # None: no rows, nothing to learn
                if hooks is not None and hooks.active and stream is not None:
                    state = stream_state(stream)  # a callback may fail at the end
                fitted |= stream_batch(self, fitted, batch)
            # One dict update, which other threads cannot interleave with: they
            # see the model before this batch or after it, never a mix.
            self.__dict__.update(fitted)
            if hooks is not None:  # on the whole model; if it fails, the batch does
                try:
                    hooks.end(fitted)
                except BaseException:
                    if state is not None:  # the stream trained in place
                        restore_stream(stream, state)
                    raise
        return self

    def transform(self, X: ArrayLike) -> NDArray[np.floating]:
        """Encode ``X`` as the posterior mean of the latent variables.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Posterior means mu(x), of the same float dtype as ``X`` (float64 for
            other dtypes).
        """
        from ._inference import encode_input, encode_mean, inference_threads

        check_is_fitted(self)
        codec, module = self._model()
        X, values, _ = encode_input(self, codec, X)
        with inference_threads(self.n_threads, module, len(values)):
            Z = encode_mean(module, values)
        return Z.astype(float_dtype(X), copy=False)

    def inverse_transform(self, X: ArrayLike) -> NDArray[np.floating]:
        """Decode latent points into the original feature space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent points, for example the output of ``transform``.

        Returns
        -------
        X_original : ndarray or DataFrame of shape (n_samples, n_features)
            Mean of p(x|z) in the units of the training data: the reconstruction
            for a Gaussian likelihood (clipped to each column's training range),
            probabilities for a Bernoulli one. Fitted on a DataFrame: a DataFrame
            with the training columns and dtypes, categorical columns taking their
            likeliest level, and the index of ``X`` when ``X`` is a DataFrame (as
            ``transform`` returns with ``set_output(transform="pandas")``).
        """
        from ._inference import decode_mean, inference_threads, to_output

        check_is_fitted(self)
        # A DataFrame of latent points (transform's pandas output) names its rows:
        # the decoded rows keep those labels, so that they align with the data.
        index = X.index if isinstance(X, pd.DataFrame) else None
        if index is not None and X.shape[1] == 0:  # n_components=0: no dtype
            X = np.empty((len(X), 0))  # to read the float type from
        n_components = self.n_components_
        Z = check_array(
            X,
            dtype=[np.float64, np.float32],
            ensure_min_samples=0,
            ensure_min_features=0,
            input_name="X",
        )
        if Z.shape[1] != n_components:
            raise ValueError(
                f"X has {Z.shape[1]} columns, but this VAETransformer has "
                f"n_components={n_components}: inverse_transform expects latent "
                f"points of shape (n_samples, {n_components})."
            )
        codec, module = self._model()
        with inference_threads(self.n_threads, module, len(Z)):
            encoded = decode_mean(module, Z, codec.width)
        return to_output(codec, encoded, Z.dtype, index=index)

    def sample(
        self,
        n_samples: int = 1,
        *,
        y: Any = None,
        random_state: int | np.random.RandomState | None = None,
        noise: bool = True,
        missing: bool = False,
    ) -> NDArray[np.float64]:
        """Generate new rows from the fitted generative model.

        Draws z from the prior N(0, I) and passes it through the decoder. A model
        fitted with class labels (``target_weight > 0``) draws z from its class
        prior: from p(z | y) for the classes in ``y``, else from the mixture of
        the classes at their training frequencies.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to generate.

        y : label or array-like of shape (n_samples,), default=None
            Class of the rows to draw: one label for every row, or one per row
            (then of length ``n_samples``). Labels are those of ``classes_``.
            Needs a model fitted with class labels and ``target_weight > 0``.

        random_state : int, RandomState instance or None, default=None
            Seeds the draws. None gives fresh randomness on every call, without
            touching any global random state.

        noise : bool, default=True
            Whether to draw x from p(x|z), adding the decoder's noise (Gaussian
            noise with the learned per-feature variance, or Bernoulli 0/1 draws), so
            that samples spread like the data. With False, return the decoder mean
            E[x|z]: smoother rows, probabilities for a Bernoulli likelihood.

            With noise, each Gaussian column is drawn from its distribution
            truncated to the column's training range (no mass piles up at the
            minimum or maximum, as it would under clipping), and columns whose
            training values are all whole numbers get whole-number samples. The
            other values get their column's precision: each a number of decimals
            drawn from the shares of the training values written with as many
            (titanic's ages: 96% whole numbers), where they have at most 6.
            Without, decoder means are clipped to the range; integer columns are
            rounded either way.

        missing : bool, default=False
            Whether to leave holes in the generated rows as the training data
            had them: each entry of a column with missing values in training is
            missing with the probability the model gives it given the row's
            latent point (a logistic regression, on the encoded training rows,
            of whether the column is missing), so holes come at about each
            column's training rate and with their relation to the other
            columns. The default, False, gives complete rows: what most
            code that consumes generated rows expects. True gives a synthetic
            copy of a table with its holes, as SDV's synthesizers do.

        Returns
        -------
        X_new : ndarray or DataFrame of shape (n_samples, n_features)
            Generated rows in the units of the training data.
        """
        import torch

        from ._holes import draw_holes, with_holes
        from ._inference import inference_threads, numpy_rng, sample_rows, to_output

        check_is_fitted(self)
        if isinstance(n_samples, bool) or not isinstance(n_samples, Integral):
            raise TypeError(
                f"n_samples must be a positive int, got {type(n_samples).__name__}."
            )
        if n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples}.")
        codes = None if y is None else self._sample_codes(y, n_samples)
        generator = torch.Generator(device=self.device_).manual_seed(
            seed_from(random_state)
        )
        # One expression: the parts of one model, whatever another thread fits.
        codec, module, holes = self._codec, self.module_, getattr(self, "_holes", None)
        if missing and holes is None:
            raise ValueError(
                "sample(missing=True) needs the model of which entries are "
                "missing, which this model was saved without (skvae before 0.1): "
                "fit it again to draw holes."
            )
        with inference_threads(self.n_threads, module, n_samples):
            encoded, z = sample_rows(
                module, n_samples, generator, codes, noise, codec.encoded_range()
            )
            # Each value's decimals, from the next draw: before the holes, so
            # that the values do not depend on whether holes are drawn.
            rng = numpy_rng(generator)
            drawn = None if not missing else draw_holes(holes, z, generator)
        table = to_output(
            codec, encoded, np.float64, samples=noise, rng=rng if noise else None
        )
        return table if drawn is None else with_holes(codec, table, drawn)

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Evidence lower bound (ELBO) of each row, in nats.

        The ELBO is a lower bound on log p(x), the log-likelihood of the row under
        the model, computed in the units of ``X``: for a Gaussian likelihood it
        includes the Jacobian of the internal standardisation, so it is comparable
        with ``PCA().score_samples`` on the same data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
            ELBO of each row; higher is better.
        """
        from ._inference import (
            N_SCORE_DRAWS,
            elbo_scores,
            encode_input,
            inference_threads,
        )

        check_is_fitted(self)
        codec, module = self._model()
        _, values, observed = encode_input(self, codec, X)
        with inference_threads(self.n_threads, module, len(values), N_SCORE_DRAWS):
            return elbo_scores(module, codec, values, observed)

    def score(self, X: ArrayLike, y: None = None) -> float:
        """Mean ELBO of the rows of ``X``, in nats; higher is better.

        Lets ``GridSearchCV`` choose ``n_components`` without labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score. A dask collection is scored partition by partition,
            as ``score_samples`` does, and the mean is computed.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            Mean of ``score_samples(X)``.
        """
        scores = self.score_samples(X)
        if is_dask_collection(scores):
            return float(scores.mean().compute())
        return float(np.mean(scores))

    @property
    def codec_(self) -> TableCodec:
        """How each column is encoded for the model (see the class's Attributes)."""
        check_is_fitted(self)
        return self._codec

    @property
    def hole_model_(self) -> dict | None:
        """Which entries are missing, given z (see the class's Attributes)."""
        check_is_fitted(self)
        return getattr(self, "_holes", None)  # None: saved before the hole model

    @property
    def n_components_(self) -> int:
        """The latent dimension (see the class's Attributes)."""
        check_is_fitted(self)
        return int(self.module_.encoder.mu.out_features)

    @property
    def explained_variance_ratio_(self) -> NDArray[np.float64]:
        """Each dimension's share of the latent's KL (see the class's Attributes)."""
        check_is_fitted(self)
        kl = np.asarray(self.kl_per_component_, dtype=np.float64)
        total = kl.sum()
        return kl / total if total > 0 else np.zeros_like(kl)

    @property
    def noise_variance_(self) -> NDArray[np.float64]:
        """Each column's decoder variance in data units (see the Attributes)."""
        from ._inference import noise_variance

        check_is_fitted(self)
        return noise_variance(self.module_, self.codec_)

    @property
    def components_(self) -> NDArray[np.float64]:
        """Not available: the decoder is not linear."""
        raise AttributeError(
            f"{type(self).__name__} has no components_: its decoder is a nonlinear "
            "map, not a matrix. The image of a latent direction is "
            "inverse_transform(Z) for latent points Z (e.g. t * np.eye("
            "n_components)); for a linear basis of the data, use "
            "sklearn.decomposition.PCA."
        )

    def _model(self) -> tuple[TableCodec, Any]:
        # Codec and module in one expression: two plain attribute reads, which
        # no other thread's update of __dict__ comes between (see partial_fit).
        return self._codec, self.module_

    @property
    def _n_features_out(self) -> int:
        # Not fitted: NotFittedError, an AttributeError, so that
        # get_feature_names_out says the estimator is not fitted.
        check_is_fitted(self)
        return self.n_components_

    def _sample_codes(self, y: Any, n_samples: int) -> torch.Tensor:
        """Class codes of ``sample(y=...)``, one per row to draw."""
        import torch

        from ._targets import class_codes

        if getattr(self, "classes_", None) is None:
            what = (
                f"a {self.target_type_} target"
                if getattr(self, "target_type_", None)
                else "no labels"
            )
            raise ValueError(
                f"sample(y=...) draws rows of a class, but this {type(self).__name__} "
                f"was fitted with {what}. Fit it with class labels and "
                "target_weight > 0 (e.g. VAETransformer(target_weight=10).fit(X, y)) "
                "to sample by class, or call sample() without y."
            )
        if np.ndim(y) == 0:
            codes = np.full(n_samples, class_codes(self.classes_, [y])[0])
        else:
            codes = class_codes(self.classes_, y)
            if len(codes) != n_samples:
                raise ValueError(
                    f"y has {len(codes)} labels but n_samples={n_samples}: give "
                    "one label for every row, or one label per row."
                )
        return torch.as_tensor(codes, device=self.device_)

    def __sklearn_is_fitted__(self) -> bool:
        # validate_data sets n_features_in_ before a fit can fail: a model is
        # fitted once fit or partial_fit has completed, which sets module_.
        return "module_" in vars(self)

    def __getstate__(self) -> dict:
        # Plain data only (see _persistence): safe for skops, loadable without
        # the fitting device, and no larger with more training rows.
        from ._persistence import dump_state

        return dump_state(super().__getstate__())

    def __setstate__(self, state: dict) -> None:
        from ._persistence import load_state

        super().__setstate__(load_state(state, type(self).__name__))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        weight = self.target_weight
        tags.target_tags.required = isinstance(weight, Real) and weight > 0
        return tags


# Dask input goes to _dask before scikit-learn's set_output wrapper sees it.
for _name in ("transform", "inverse_transform", "score_samples"):
    setattr(VAETransformer, _name, _dask_aware(getattr(VAETransformer, _name)))
del _name
