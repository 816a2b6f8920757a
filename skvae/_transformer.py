"""VAETransformer: the scikit-learn face of the VAE."""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import _safe_indexing, check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._dask import dask_aware, fit_dask, is_dask_collection
from ._likelihoods import TableLikelihood
from ._model import (
    VAE,
    init_from_pca,
    init_weights,
    kl_standard_normal,
    row_noise,
    start_target,
    target_head,
)
from ._persistence import dump_state, load_state
from ._streaming import new_stream, stream_epoch
from ._tabular import BINARY, CONTINUOUS, fit_encode, refit_statistics
from ._targets import CLASSES, class_codes, fit_targets
from ._training import (
    MAX_VALIDATION_ROWS,
    Targets,
    TrainConfig,
    as_tensors,
    auto_batch_size,
    auto_max_iter,
    train,
)
from ._validation import float_dtype, resolve_device, seed_from, validate_table
from ._weights import (
    as_repetitions,
    canonical_rows,
    check_weights,
    take_rows,
    weighted_pca,
)

# Inference runs in chunks of rows sized so that the largest intermediate array
# (rows x noise draws x the widest layer of the network) holds at most this many
# float64 values: 16 MiB. A forward pass keeps a handful of such arrays alive, so
# transform, inverse_transform and score_samples stay within about 100 MiB above
# their input and output, whatever the number of rows.
_CHUNK_ELEMENTS = 2**21
# Floor on the Gaussian decoder's variance, in standardised units.
_MIN_VARIANCE = 1e-3
# Noise draws per row for the ELBO in ``score_samples``: 4 antithetic pairs, each
# row's own (``row_noise``). Measured against 512 draws on digits, breast_cancer
# and crashes: the mean score within 0.06 nats (each row's within 0.4-0.9), at a
# quarter of the cost of the 32 draws shared by every row used before, whose mean
# was off by up to 0.5 nats.
_N_SCORE_DRAWS = 8


def _without_labels(estimator: Any) -> bool:
    """``partial_fit`` trains without labels: only there with target_weight=0."""
    if estimator.target_weight > 0:
        raise AttributeError(
            "partial_fit trains without labels and is only available with "
            f"target_weight=0 (this estimator has target_weight="
            f"{estimator.target_weight:g}); use fit(X, y) to train on labels."
        )
    return True


class VAETransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
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
        returns).

    hidden_layer_sizes : int or array-like of int, default=(256, 128)
        Widths of the encoder's ReLU hidden layers; the decoder mirrors them in
        reverse order. An empty tuple gives a linear VAE, which recovers
        probabilistic PCA.

    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        Decoder distribution p(x|z) of the continuous (non-categorical) columns.

        - ``"gaussian"``: features are standardised inside the estimator; the
          decoder predicts the mean and each feature has one learned variance (a
          parameter, not a function of z). For continuous data.
        - ``"bernoulli"``: each feature is the probability of a binary outcome; the
          decoder predicts logits. For data in [0, 1] such as pixel intensities.

        Categorical columns always get their own likelihood: Bernoulli for two
        levels, categorical (softmax over the levels) for more.

    categorical_features : "from_dtype", array-like or None, default="from_dtype"
        Which columns are categorical, as in
        :class:`~sklearn.ensemble.HistGradientBoostingClassifier`:

        - ``"from_dtype"``: the DataFrame's category, object, string and bool
          columns are categorical; numeric columns are continuous. Arrays have no
          categorical columns.
        - array-like of str: column names (needs a DataFrame);
        - array-like of int: column indices;
        - array-like of bool: a mask with one entry per column;
        - None: no categorical columns.

        The levels of a categorical column are its observed values (sorted), or
        the categories of a category column.

    scaling : {"standard", "global"}, default="standard"
        How continuous columns are scaled before the model sees them (they are
        always centred). ``"standard"`` divides each by its own standard deviation,
        as StandardScaler: right for columns in different units (age, income).
        ``"global"`` divides every column by one scale (the root mean square of
        their standard deviations), which keeps their relative scales: right for
        columns in one unit (pixels, counts, spectra), where a high-variance column
        matters more and a nearly constant one should stay small rather than be
        blown up to unit variance. Likelihoods, ``score`` and the PCA start are in
        the data's units either way, so ``GridSearchCV`` can choose it by
        ``score`` or by a downstream metric. Ignored with
        ``likelihood="bernoulli"``.

    handle_unknown : {"ignore", "error"}, default="ignore"
        What ``transform`` and ``score_samples`` do with a category that was not
        seen during fit. ``"ignore"`` treats it as a missing value (as
        ``OneHotEncoder(handle_unknown="ignore")`` gives it no column); ``"error"``
        raises a ValueError naming the column and the values.

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

    beta : float, default=1.0
        Weight of the KL term (beta-VAE). Values above 1 favour a smoother, more
        disentangled latent space; values below 1 favour reconstruction. Only
        ``beta=1`` trains on the true ELBO.

    kl_warmup : int, default=0
        Number of epochs over which the KL weight ramps linearly up to ``beta``.
        Warm-up lets the decoder learn to use z before the KL term pulls the
        posterior to the prior, a guard against posterior collapse. Stopping rules
        only count epochs after the warm-up.

    max_iter : int or "auto", default="auto"
        Maximum number of epochs (passes over the training data). ``"auto"``: 200
        epochs, or as many as 10,000 mini-batch steps take when an epoch has fewer
        than 50 (small data: 1,600 training rows at batch 256 get up to 1,429
        epochs). Early stopping usually ends training well before.

    batch_size : int or "auto", default="auto"
        Rows per mini-batch; clamped to the number of training rows. ``"auto"``:
        twice the square root of the number of training rows, rounded to a power
        of two and kept between 256 and 4,096 (256 up to about 20,000 rows, 512 at
        100,000, 2,048 at a million). Larger data affords larger batches, which
        run closer to the machine's matrix-product throughput. In ``partial_fit``
        it is sized from each call's rows.

    learning_rate : float, default=1e-3
        Step size of the Adam optimiser.

    early_stopping : bool, default=True
        Whether to hold out ``validation_fraction`` of the rows and stop when their
        negative ELBO has not improved by ``tol`` for ``n_iter_no_change`` epochs,
        then restore the weights of the best validation epoch. The starting point
        counts as an epoch, so with the Gaussian likelihood the result is never
        worse on the validation rows than probabilistic PCA. When False, the same
        rule applies to the training loss and the final weights are kept. A fit
        with labels (``target_weight > 0``) holds out no rows and follows the
        training loss: every label trains, and the held-out label likelihood,
        which falls as classes sharpen while accuracy still rises, stopped such
        fits too early (digits, k=2: accuracy 0.76-0.88 instead of 0.91-0.92).

    validation_fraction : float, default=0.1
        Fraction of rows held out for early stopping (at least one row, at most
        10,000, and at least one row is left to train on). Only used when
        ``early_stopping=True``.

    n_iter_no_change : int, default=10
        Number of evaluation periods without an improvement of at least ``tol``
        before training stops. A period is an epoch, or, on more than 2**20
        (1,048,576) training rows, a part of an epoch of about that many rows, so
        that a fit on ten million rows can stop within its first epoch.

    tol : float, default=1e-4
        Minimum improvement of the monitored loss, in nats per row.

    device : str or torch.device, default="auto"
        Where to train and run the model: ``"auto"`` picks CUDA when available and the
        CPU otherwise; any other value is passed to ``torch.device`` (``"cpu"``,
        ``"cuda"``, ``"cuda:1"``, ...).

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, the validation split and the noise
        of the reparameterisation. Pass an int for reproducible fits. The global
        NumPy, PyTorch and ``random`` states are neither used nor changed.

    verbose : bool or int, default=False
        Whether to show a progress bar with the training loss. Messages such as the
        reason for stopping go to the ``skvae`` logger.

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
        The likelihood of each column: ``"gaussian"``, ``"bernoulli"`` or
        ``"categorical"``.

    mean_ : ndarray of shape (n_features,)
        Per-column mean of the observed values, subtracted before encoding
        (zeros for ``"bernoulli"`` and for categorical columns).

    scale_ : ndarray of shape (n_features,)
        Scale divided out of each column before encoding: its standard deviation
        over the observed values with ``scaling="standard"``, one shared scale with
        ``"global"`` (ones for ``"bernoulli"`` and categorical columns, and for
        constant columns with ``"standard"``).

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
        data, in nats. The VAE's analogue of PCA's ``explained_variance_``: a
        dimension with a KL near zero carries no information (posterior collapse).

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
    their continuous values are clipped to each column's range in the training data.

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
    ...     "age": [23.0, 41.0, np.nan, 35.0, 52.0, 29.0],
    ...     "plan": pd.Categorical(["a", "b", "b", None, "c", "a"]),
    ...     "member": [True, False, True, True, False, False],
    ... })
    >>> vae = VAETransformer(n_components=1, max_iter=5, random_state=0).fit(df)
    >>> vae.column_likelihoods_.tolist()
    ['gaussian', 'categorical', 'bernoulli']
    >>> [str(dtype) for dtype in vae.sample(2, random_state=0).dtypes]
    ['float64', 'category', 'bool']
    >>> vae.inverse_transform(vae.transform(df)).shape
    (6, 3)
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "likelihood": [StrOptions({"gaussian", "bernoulli"})],
        "categorical_features": ["array-like", StrOptions({"from_dtype"}), None],
        "scaling": [StrOptions({"standard", "global"})],
        "handle_unknown": [StrOptions({"ignore", "error"})],
        "target_weight": [Interval(Real, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup": [Interval(Integral, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components: int = 2,
        *,
        hidden_layer_sizes: ArrayLike = (256, 128),
        likelihood: str = "gaussian",
        categorical_features: ArrayLike | str | None = "from_dtype",
        scaling: str = "standard",
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
        random_state: int | np.random.RandomState | None = None,
        verbose: bool | int = False,
    ) -> None:
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.likelihood = likelihood
        self.categorical_features = categorical_features
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
        The fit does not depend on the order of the rows: equal rows are merged
        into one of their summed weight, and the rows are put in an order given
        by their values before the validation split and the mini-batches.
        """
        # fit starts afresh: no optimizer state from earlier partial_fit calls.
        self.__dict__.pop("_stream", None)
        if self.target_weight > 0 and y is None:
            raise ValueError(
                f"VAETransformer with target_weight={self.target_weight:g} requires y "
                "to be passed, but the target y is None. Pass y to fit (in a "
                "Pipeline, pipe.fit(X, y)), or set target_weight=0 to train "
                "without labels."
            )
        if is_dask_collection(X):  # streamed partition by partition
            self._check_dask_fit(y, sample_weight)
            return fit_dask(self, X)
        codec, values, observed, generator, seed, hidden, weights, labels = self._start(
            X, y=y, sample_weight=sample_weight, canonical=True
        )

        n_samples = values.shape[0]
        data, mask = as_tensors(values, observed, self.device_)
        offsets = codec.log_jacobian(observed)
        train_rows = np.arange(n_samples)
        val_rows = None
        # With labels no rows are held out: every label trains (see early_stopping).
        if self.early_stopping and n_samples > 1 and labels is None:
            # At least one row on each side of the split.
            n_val = min(
                max(1, round(self.validation_fraction * n_samples)),
                MAX_VALIDATION_ROWS,
                n_samples - 1,
            )
            order = torch.randperm(n_samples, generator=generator, device=self.device_)
            order_np = order.cpu().numpy()
            val_rows, train_rows = order_np[:n_val], order_np[n_val:]

        def part(rows: np.ndarray | None) -> dict[str, Any]:
            if rows is None:
                return {}
            w = None if weights is None else weights[rows] / weights[rows].mean()
            if len(rows) == n_samples:  # every row: no copy
                X_part, M_part = data, mask
            else:
                index = torch.as_tensor(rows, device=self.device_)
                X_part = data[index]
                M_part = None if mask is None else mask[index]
            return {
                "X": X_part,
                "M": M_part,
                "W": None if w is None else self._tensor(w),
                "offset": float(np.average(offsets[rows], weights=w)),
                "targets": None if labels is None else self._targets(labels[rows]),
                "weights": w,
            }

        train_part, val_part = part(train_rows), part(val_rows)
        # Training rows only for the PCA start: a start fitted to the validation
        # rows would look better on them than it is, and early stopping would keep
        # it too often (measured: breast_cancer k=10 held-out bound 16.1, not 22.3).
        module = self._new_module(
            codec,
            hidden,
            generator,
            train_part["X"],
            seed,
            weights=train_part["weights"],
            labels=labels,
        )
        if labels is not None:
            start_target(module, data, labels, weights)
        self._train(
            module,
            train_part["X"],
            val_part.get("X"),
            train_part["M"],
            val_part.get("M"),
            generator,
            (train_part["offset"], val_part.get("offset")),
            weights=(train_part["W"], val_part.get("W")),
            targets=train_part["targets"],
        )
        self.kl_per_component_ = self._kl_per_component(values, weights)
        return self

    def _check_dask_fit(self, y: Any, sample_weight: Any) -> None:
        if sample_weight is not None:
            raise ValueError(
                "sample_weight is not supported when fitting a dask collection. "
                "Fit an in-memory table (a pandas DataFrame or NumPy array) to "
                "weigh rows."
            )
        if y is not None and self.target_weight > 0:
            raise ValueError(
                f"target_weight={self.target_weight:g} trains on labels, which a "
                "fit on a dask collection does not take. Fit an in-memory table "
                "with y, or set target_weight=0."
            )

    def _tensor(self, values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values, dtype=torch.float32, device=self.device_)

    def _targets(self, labels: np.ndarray) -> Targets:
        """Labels as the training loop takes them (see ``Targets``)."""
        if labels.dtype == np.int64:
            values = torch.as_tensor(labels, device=self.device_)
        else:
            values = self._tensor(labels)
        return Targets(values, float(self.target_weight))

    def _budget(self, n_train: int) -> tuple[int, int]:
        """Return the mini-batch size and the epoch budget for ``n_train`` rows."""
        if self.batch_size == "auto":
            batch_size = auto_batch_size(n_train)
        else:
            batch_size = min(self.batch_size, n_train)
        if self.max_iter == "auto":
            return batch_size, auto_max_iter(n_train, batch_size)
        return batch_size, self.max_iter

    def _train(
        self,
        module: VAE,
        X_train: Any,
        X_val: torch.Tensor | None,
        M_train: torch.Tensor | None,
        M_val: torch.Tensor | None,
        generator: torch.Generator,
        offsets: tuple[float, float | None],
        weights: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
        targets: Targets | None = None,
    ) -> None:
        """Train ``module`` and set the fitted attributes training decides.

        ``X_train`` is a tensor, or a ``Partitions`` source for data that arrive in
        parts; ``offsets`` are the mean log-Jacobians of the training and
        validation rows, which turn losses into the units of the data;
        ``weights`` are the training and validation rows', ``targets`` the
        training rows' labels (see ``train``).
        """
        offset_train, offset_val = offsets
        n_train = (
            X_train.shape[0] if isinstance(X_train, torch.Tensor) else X_train.n_rows
        )
        batch_size, max_iter = self._budget(n_train)
        config = TrainConfig(
            max_iter=max_iter,
            batch_size=batch_size,
            learning_rate=self.learning_rate,
            beta=self.beta,
            kl_warmup=self.kl_warmup,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            verbose=bool(self.verbose),
            offset_train=float(offset_train),
            offset_val=0.0 if offset_val is None else float(offset_val),
        )
        result = train(
            module,
            X_train,
            X_val,
            config,
            generator,
            M_train,
            M_val,
            *weights,
            targets,
        )

        # float64 from here on: inference gives the same digits for a row whatever
        # the batch around it, which float32 matrix products do not guarantee.
        self.module_ = module.double().eval()
        self.n_iter_ = result.n_iter
        # Back to the user's units: the Jacobian of the standardisation of the
        # observed continuous entries, averaged over the rows concerned.
        self.loss_curve_ = [loss + offset_train for loss in result.loss_curve]
        if X_val is not None:
            self.validation_scores_ = [
                -(v + offset_val) for v in result.validation_losses
            ]
            best = result.best_validation_loss
            self.best_validation_score_ = None if best is None else -(best + offset_val)
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        stopped = result.converged or result.interrupted
        if not stopped and result.n_iter == max_iter:
            warnings.warn(
                f"VAETransformer stopped at max_iter={max_iter} epochs while the "
                f"{'validation' if X_val is not None else 'training'} loss was still "
                f"improving by more than tol={self.tol:g}. Increase max_iter to "
                "train longer.",
                ConvergenceWarning,
                stacklevel=4,  # past _train, fit and scikit-learn's _fit_context
            )

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
        the same optimizer state, and need the same columns. On a model fitted
        with ``fit``, the first call continues from its weights with a new
        optimizer. ``n_samples_seen_`` and ``n_iter_`` count the rows and calls.
        There is no early stopping: the caller decides when to stop, for instance
        on ``score`` of held-out rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of rows. The first batch needs at least two rows and fixes
            what the codec learns, so make it representative: all the categories,
            the range of each column.

        y : None
            Ignored; present for API consistency. ``partial_fit`` trains without
            labels, and is only available with ``target_weight=0``.

        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row's terms in the loss (and, in the first call, in
            the column statistics and the PCA start). None: all 1.

        Returns
        -------
        self : VAETransformer
            The estimator, trained on one more batch.
        """
        if not hasattr(self, "module_"):
            codec, values, observed, generator, seed, hidden, weights, _ = self._start(
                X, sample_weight=sample_weight
            )
            start, _ = as_tensors(values, observed, self.device_)
            self.module_ = self._new_module(
                codec, hidden, generator, start, seed, weights=weights
            )
            self._stream = new_stream(self.module_, self.learning_rate, generator)
            self.n_samples_seen_, self.n_iter_, self.loss_curve_ = 0, 0, []
        else:
            X = validate_table(self, X, reset=False)
            weights = check_weights(sample_weight, X)
            keep = np.flatnonzero(weights > 0)
            X, weights = take_rows(X, keep), weights[keep]
            if np.all(weights == weights[0]):
                weights = None
            values, observed = self._codec.encode(X, self.handle_unknown, strict=True)
            self._check_likelihood_range(values, observed)
            if getattr(self, "_stream", None) is None:  # after fit or loading
                seed = seed_from(self.random_state)
                generator = torch.Generator(device=self.device_).manual_seed(seed)
                self._stream = new_stream(self.module_, self.learning_rate, generator)
        beta = self.beta
        if self.kl_warmup:
            beta *= min(1.0, (self.n_iter_ + 1) / self.kl_warmup)
        batch_size, _ = self._budget(values.shape[0])
        if weights is not None:
            weights = weights / weights.mean()
        loss = stream_epoch(
            self.module_, self._stream, values, observed, batch_size, beta, weights
        )
        self.n_samples_seen_ += values.shape[0]
        self.n_iter_ += 1
        jacobian = np.average(self._codec.log_jacobian(observed), weights=weights)
        self.loss_curve_.append(loss + jacobian)
        self.validation_scores_ = self.best_validation_score_ = None
        self.kl_per_component_ = self._kl_per_component(values, weights)
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
        check_is_fitted(self)
        X = validate_table(self, X, reset=False)
        values, _ = self._codec.encode(X, self.handle_unknown)

        def encode_mean(x: torch.Tensor, mask: None) -> torch.Tensor:
            return self.module_.encode(x)[0]

        Z = self._apply_in_chunks(encode_mean, values, self.n_components)
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
        check_is_fitted(self)
        # A DataFrame of latent points (transform's pandas output) names its rows:
        # the decoded rows keep those labels, so that they align with the data.
        index = X.index if isinstance(X, pd.DataFrame) else None
        Z = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"X has {Z.shape[1]} columns, but this VAETransformer has "
                f"n_components={self.n_components}: inverse_transform expects latent "
                f"points of shape (n_samples, {self.n_components})."
            )
        return self._to_output(self._decode_mean(Z), Z.dtype, index=index)

    def sample(
        self,
        n_samples: int = 1,
        *,
        y: Any = None,
        random_state: int | np.random.RandomState | None = None,
        noise: bool = True,
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

            Gaussian columns are clipped to their training range; with noise,
            columns whose training values are all whole numbers get whole-number
            samples, and integer columns are rounded either way.

        Returns
        -------
        X_new : ndarray or DataFrame of shape (n_samples, n_features)
            Generated rows in the units of the training data.
        """
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
        with torch.no_grad():
            z = self.module_.sample_prior(n_samples, generator, codes)
            out = self.module_.decode(z)
            likelihood = self.module_.likelihood
            x = likelihood.sample(out, generator) if noise else likelihood.mean(out)
        return self._to_output(x.cpu().numpy(), np.float64, samples=noise)

    def _sample_codes(self, y: Any, n_samples: int) -> torch.Tensor:
        """Class codes of ``sample(y=...)``, one per row to draw."""
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
        check_is_fitted(self)
        X = validate_table(self, X, reset=False)
        values, observed = self._codec.encode(X, self.handle_unknown)
        self._check_likelihood_range(values, observed)

        def elbo(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
            noise = row_noise(x.cpu().numpy(), _N_SCORE_DRAWS, self.n_components)
            eps = torch.from_numpy(noise).to(x.device)
            return self.module_.elbo(x, eps, mask)[:, None]

        mask = None if observed.all() else observed
        per_row = self._apply_in_chunks(
            elbo, values, 1, draws=_N_SCORE_DRAWS, mask=mask
        )
        return per_row[:, 0] - self._codec.log_jacobian(observed)

    def score(self, X: ArrayLike, y: None = None) -> float:
        """Mean ELBO of the rows of ``X``, in nats; higher is better.

        Lets ``GridSearchCV`` choose ``n_components`` without labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            Mean of ``score_samples(X)``.
        """
        return float(np.mean(self.score_samples(X)))

    @property
    def _n_features_out(self) -> int:
        return self.n_components

    def _start(
        self,
        X: Any,
        statistics: dict | None = None,
        y: Any = None,
        sample_weight: Any = None,
        canonical: bool = False,
    ) -> tuple:
        """Validate ``X``, fit the column codec and set the attributes it decides.

        Returns the codec, the encoded ``X`` (values, observed), a generator seeded
        from ``random_state``, its seed, the hidden layer sizes, the rows' weights
        (None when all are equal) and their target codes (None unless ``y`` is
        given and ``target_weight > 0``; see ``fit_targets``). With
        ``statistics`` (see ``refit_statistics``), ``X`` is a sample that only
        types the columns, and the statistics come from the whole data. Rows of
        weight 0 are left out (labels and classes come from the rows kept). With
        ``canonical``, the rows are those of ``canonical_rows`` (equal rows
        merged, in an order of their values), spread back out as copies when the
        weights are whole numbers.
        """
        hidden = self._check_hidden_layer_sizes()
        X = validate_table(self, X, reset=True)
        weights = check_weights(sample_weight, X)
        target_codec, labels = None, None
        use_labels = self.target_weight > 0 and y is not None
        if not np.all(weights > 0):  # rows of weight 0 do not exist for the fit
            keep = np.flatnonzero(weights > 0)
            if use_labels:
                fit_targets(y, X.shape[0])  # y's own errors first, on every row
                y = _safe_indexing(y, keep)
            X, weights = take_rows(X, keep), weights[keep]
        if use_labels:
            target_codec, labels = fit_targets(y, X.shape[0])
        if canonical:
            positions, weights = as_repetitions(
                *canonical_rows(X, weights, labels), n_rows=X.shape[0]
            )
            X = take_rows(X, positions)
            labels = None if labels is None else labels[positions]
        if np.all(weights == weights[0]):
            weights = None  # all equal: the unweighted fit, exactly
        codec, values, observed = fit_encode(
            X,
            self.categorical_features,
            standardize=self.likelihood == "gaussian",
            scaling=self.scaling,
            feature_names=getattr(self, "feature_names_in_", None),
            weights=weights,
        )
        if statistics is not None:
            codec = refit_statistics(codec, statistics, self.scaling)
            values, observed = codec.encode(X)
        self._codec = codec
        self._check_likelihood_range(values, observed)
        self.device_ = resolve_device(self.device)
        seed = seed_from(self.random_state)
        generator = torch.Generator(device=self.device_).manual_seed(seed)

        self.is_categorical_ = np.array([c.kind != CONTINUOUS for c in codec.columns])
        self.categories_ = [c.categories for c in codec.columns]
        family = {CONTINUOUS: self.likelihood, BINARY: "bernoulli"}
        self.column_likelihoods_ = np.array(
            [family.get(c.kind, "categorical") for c in codec.columns], dtype=object
        )
        self.mean_ = np.array(
            [c.mean if codec.standardize else 0.0 for c in codec.columns]
        )
        self.scale_ = np.array([c.scale for c in codec.columns])
        self.n_samples_seen_ = values.shape[0]
        self.target_type_ = (
            None if target_codec is None else target_codec.type_of_target
        )
        self.classes_ = None
        if target_codec is not None and target_codec.kind == CLASSES:
            self.classes_ = target_codec.classes
        return codec, values, observed, generator, seed, hidden, weights, labels

    def _new_module(
        self,
        codec: Any,
        hidden: tuple[int, ...],
        generator: torch.Generator,
        X_start: torch.Tensor,
        seed: int,
        weights: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> VAE:
        """Build a VAE; Gaussian: start at probabilistic PCA of ``X_start``.

        ``weights`` weigh the rows of ``X_start`` in the PCA. With ``labels`` (see
        ``fit_targets``), the model has a target head (see ``target_weight``).
        """
        likelihood = TableLikelihood(
            codec.n_continuous, self.likelihood, codec.n_binary, codec.cardinalities
        )
        with torch.device("meta"):
            target = target_head(
                None if self.classes_ is None else len(self.classes_),
                None if labels is None else labels.reshape(len(labels), -1).shape[1],
                self.n_components,
            )
            module = VAE(codec.width, self.n_components, hidden, likelihood, target)
        module = module.to_empty(device=self.device_)
        init_weights(module, generator)
        if self.likelihood == "gaussian":
            self._init_from_pca(module, X_start, seed, weights)
        return module

    def _check_hidden_layer_sizes(self) -> tuple[int, ...]:
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.ndim != 1 or (
            sizes.size and not np.issubdtype(sizes.dtype, np.integer)
        ):
            raise ValueError(
                "hidden_layer_sizes must be a sequence of positive ints, got "
                f"{self.hidden_layer_sizes!r}."
            )
        if np.any(sizes <= 0):
            raise ValueError(
                f"hidden_layer_sizes must be positive, got {self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _init_from_pca(
        self,
        module: VAE,
        X_train: torch.Tensor,
        seed: int,
        weights: np.ndarray | None = None,
    ) -> None:
        """Start at probabilistic PCA of the (standardised) training rows.

        With fewer than two training rows PCA has no variance to work with, and the
        model keeps its random initialisation. ``weights`` give a weighted PCA.
        """
        if X_train.shape[0] < 2:
            return
        X_np = X_train.cpu().numpy().astype(np.float64)
        n_pca = min(self.n_components, *X_np.shape)
        if weights is None:
            pca = PCA(n_pca, random_state=seed % 2**32).fit(X_np)
            mean, components = pca.mean_, pca.components_
            variances, noise = pca.explained_variance_, pca.noise_variance_
        else:
            mean, components, variances, noise = weighted_pca(X_np, weights, n_pca)
        if not np.all(np.isfinite(variances)):
            return
        noise_variance = max(noise, _MIN_VARIANCE)
        with torch.no_grad():
            init_from_pca(
                module,
                mean,
                components,
                variances,
                noise_variance,
                link=self._logit_link(mean),
            )

    def _logit_link(self, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """First-order logit expansion at the training frequencies (see init_from_pca).

        None when every output is Gaussian, which keeps the start exactly PPCA.
        """
        codec = self._codec
        n_cont = codec.n_continuous
        if codec.all_continuous:
            return None
        p = np.clip(mean, 0.01, 0.99)
        bias, gain = mean.copy(), np.ones_like(mean)
        binary = slice(n_cont, n_cont + codec.n_binary)
        bias[binary] = np.log(p[binary]) - np.log1p(-p[binary])
        gain[binary] = 1.0 / (p[binary] * (1.0 - p[binary]))
        levels = slice(n_cont + codec.n_binary, None)
        bias[levels] = np.log(p[levels])
        gain[levels] = 1.0 / p[levels]
        return bias, np.minimum(gain, 10.0)

    def _check_likelihood_range(self, values: np.ndarray, observed: np.ndarray) -> None:
        if self.likelihood != "bernoulli":
            return
        n_cont = self._codec.n_continuous
        seen = values[:, :n_cont][observed[:, :n_cont]]
        if seen.size and (seen.min() < 0 or seen.max() > 1):
            raise ValueError(
                'likelihood="bernoulli" needs values in [0, 1], got values in '
                f"[{seen.min():g}, {seen.max():g}]. Scale the data (e.g. MinMaxScaler) "
                'or use likelihood="gaussian".'
            )

    def _apply_in_chunks(
        self,
        fn: Any,
        X: np.ndarray,
        n_out: int,
        draws: int = 1,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Apply ``fn(x, mask)`` to float64 chunks on the model's device, no grad.

        ``draws`` is the number of noise draws ``fn`` pushes through the network
        for each row: chunks shrink with it (see ``_CHUNK_ELEMENTS``).
        """
        n_rows = X.shape[0]
        chunk = chunk_rows(self.module_, draws, max(X.shape[1], n_out))
        out = np.empty((n_rows, n_out))
        with torch.no_grad():
            for start in range(0, n_rows, chunk):
                part = slice(start, start + chunk)
                x = torch.tensor(X[part], dtype=torch.float64, device=self.device_)
                m = None
                if mask is not None:
                    m = torch.tensor(mask[part], dtype=torch.float64, device=x.device)
                out[part] = fn(x, m).cpu().numpy()
        return out

    def _decode_mean(self, Z: np.ndarray) -> np.ndarray:
        """Mean of p(x|z) in the encoded space (standardised, probabilities)."""

        def decode(z: torch.Tensor, mask: None) -> torch.Tensor:
            return self.module_.likelihood.mean(self.module_.decode(z))

        return self._apply_in_chunks(decode, Z, self._codec.width)

    def _to_output(
        self,
        encoded: np.ndarray,
        dtype: Any,
        samples: bool = False,
        index: pd.Index | None = None,
    ) -> Any:
        """Turn encoded rows into the training table's form and dtypes."""
        table = self._codec.decode(encoded, samples=samples)
        if isinstance(table, np.ndarray) and table.dtype.kind == "f":
            return table.astype(dtype, copy=False)
        if index is not None and isinstance(table, pd.DataFrame):
            table.index = index
        return table

    def _kl_per_component(
        self, values: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        def kl(x: torch.Tensor, mask: None) -> torch.Tensor:
            return kl_standard_normal(*self.module_.encode(x))

        per_row = self._apply_in_chunks(kl, values, self.n_components)
        return np.average(per_row, axis=0, weights=weights)

    def __getstate__(self) -> dict:
        # Plain data only (see _persistence): safe for skops, loadable without
        # the fitting device, and no larger with more training rows.
        return dump_state(super().__getstate__())

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(load_state(state, type(self).__name__))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        weight = self.target_weight
        tags.target_tags.required = isinstance(weight, Real) and weight > 0
        return tags


# Dask input goes to _dask before scikit-learn's set_output wrapper sees it.
for _name in ("transform", "inverse_transform", "score_samples"):
    setattr(VAETransformer, _name, dask_aware(getattr(VAETransformer, _name)))
del _name


def chunk_rows(module: torch.nn.Module, draws: int = 1, width: int = 1) -> int:
    """Rows per inference chunk: ``_CHUNK_ELEMENTS`` over draws x widest layer."""
    widest = max(
        [width]
        + [
            max(layer.in_features, layer.out_features)
            for layer in module.modules()
            if isinstance(layer, torch.nn.Linear)
        ]
    )
    return max(1, _CHUNK_ELEMENTS // (draws * widest))
