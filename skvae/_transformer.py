"""VAETransformer: the scikit-learn face of the VAE."""

from __future__ import annotations

import copy
import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
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
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._model import VAE, init_from_pca, init_weights, kl_standard_normal
from ._training import TrainConfig, train

# Rows per chunk at inference, scaled down for wide data so that memory stays
# bounded (about 32 MiB of float64 per intermediate array).
_CHUNK_ELEMENTS = 2**22
# Floor on the Gaussian decoder's variance, in standardised units.
_MIN_VARIANCE = 1e-3
# Noise draws per row for the ELBO in ``score_samples``: 16 antithetic pairs.
_N_SCORE_DRAWS = 32


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
        Dimension of the latent space, the number of output features.

    hidden_layer_sizes : int or array-like of int, default=(256, 128)
        Widths of the encoder's ReLU hidden layers; the decoder mirrors them in
        reverse order. An empty tuple gives a linear VAE, which recovers
        probabilistic PCA.

    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        Decoder distribution p(x|z).

        - ``"gaussian"``: features are standardised inside the estimator; the
          decoder predicts the mean and each feature has one learned variance (a
          parameter, not a function of z). For continuous data.
        - ``"bernoulli"``: each feature is the probability of a binary outcome; the
          decoder predicts logits. For data in [0, 1] such as pixel intensities.

    beta : float, default=1.0
        Weight of the KL term (beta-VAE). Values above 1 favour a smoother, more
        disentangled latent space; values below 1 favour reconstruction. Only
        ``beta=1`` trains on the true ELBO.

    kl_warmup : int, default=0
        Number of epochs over which the KL weight ramps linearly up to ``beta``.
        Warm-up lets the decoder learn to use z before the KL term pulls the
        posterior to the prior, a guard against posterior collapse. Stopping rules
        only count epochs after the warm-up.

    max_iter : int, default=200
        Maximum number of epochs (passes over the training data).

    batch_size : int, default=256
        Rows per mini-batch; clamped to the number of training rows.

    learning_rate : float, default=1e-3
        Step size of the Adam optimiser.

    early_stopping : bool, default=True
        Whether to hold out ``validation_fraction`` of the rows and stop when their
        negative ELBO has not improved by ``tol`` for ``n_iter_no_change`` epochs,
        then restore the weights of the best validation epoch. The starting point
        counts as an epoch, so with the Gaussian likelihood the result is never
        worse on the validation rows than probabilistic PCA. When False, the same
        rule applies to the training loss and the final weights are kept.

    validation_fraction : float, default=0.1
        Fraction of rows held out for early stopping (at least one row). Only used
        when ``early_stopping=True``.

    n_iter_no_change : int, default=10
        Number of epochs without an improvement of at least ``tol`` before training
        stops.

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

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit. Defined only when ``X`` has feature
        names that are all strings.

    mean_ : ndarray of shape (n_features_in_,)
        Per-feature mean subtracted before encoding (zeros for ``"bernoulli"``).

    scale_ : ndarray of shape (n_features_in_,)
        Per-feature scale divided out before encoding (ones for ``"bernoulli"``;
        one for constant features).

    module_ : torch.nn.Module
        The trained VAE (``encoder``, ``decoder``, ``likelihood``). It is kept in
        float64 after training so that ``transform`` gives the same result for a row
        whatever batch it comes in.

    device_ : torch.device
        Device the model lives on.

    n_iter_ : int
        Number of epochs run.

    loss_curve_ : list of float
        Training negative ELBO per epoch, in nats per row, in the units of ``X``
        (comparable with ``-score(X)``).

    validation_scores_ : list of float or None
        Validation ELBO per epoch, in nats per row, in the units of ``X`` (higher is
        better). None unless ``early_stopping=True``.

    best_validation_score_ : float or None
        Validation ELBO of the weights kept: the best epoch's, or the starting
        point's when no epoch beat it. None unless ``early_stopping=True``.

    kl_per_component_ : ndarray of shape (n_components,)
        Mean KL divergence of each latent dimension from the prior on the training
        data, in nats. The VAE's analogue of PCA's ``explained_variance_``: a
        dimension with a KL near zero carries no information (posterior collapse).

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction; probabilistic PCA
        is the linear special case of this model.
    sklearn.decomposition.FactorAnalysis : Linear Gaussian latent model with a
        per-feature noise variance.

    Notes
    -----
    ``transform`` is deterministic: it returns the posterior mean, computed in eval
    mode, in float64, in bounded batches. ``score_samples`` estimates the ELBO with
    the same 32 noise draws (16 antithetic pairs) for every row, so it is
    deterministic and a row's score does not depend on the other rows.

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
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "likelihood": [StrOptions({"gaussian", "bernoulli"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup": [Interval(Integral, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
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
        beta: float = 1.0,
        kl_warmup: int = 0,
        max_iter: int = 200,
        batch_size: int = 256,
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
    def fit(self, X: ArrayLike, y: None = None) -> VAETransformer:
        """Fit the VAE to ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data. At least two rows.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : VAETransformer
            The fitted estimator.
        """
        hidden = self._check_hidden_layer_sizes()
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        self._check_likelihood_range(X)
        self.device_ = _resolve_device(self.device)
        seed = _seed_from(self.random_state)
        generator = torch.Generator(device=self.device_).manual_seed(seed)

        n_samples, n_features = X.shape
        if self.likelihood == "gaussian":
            self.mean_ = X.mean(axis=0, dtype=np.float64)
            std = X.std(axis=0, dtype=np.float64)
            # Constant features keep scale 1, as in StandardScaler.
            self.scale_ = np.where(std < 10 * np.finfo(np.float64).eps, 1.0, std)
        else:
            self.mean_ = np.zeros(n_features)
            self.scale_ = np.ones(n_features)
        data = torch.tensor(self._standardize(X), dtype=torch.float32)
        data = data.to(self.device_)

        X_train, X_val = data, None
        if self.early_stopping:
            n_val = max(1, round(self.validation_fraction * n_samples))
            order = torch.randperm(n_samples, generator=generator, device=self.device_)
            X_val, X_train = data[order[:n_val]], data[order[n_val:]]

        with torch.device("meta"):
            module = VAE(n_features, self.n_components, hidden, self.likelihood)
        module = module.to_empty(device=self.device_)
        init_weights(module, generator)
        if self.likelihood == "gaussian":
            # Training rows only: a start fitted to the validation rows would look
            # better on them than it is, and early stopping would keep it too often
            # (measured: breast_cancer k=10 held-out bound 16.1 instead of 22.3).
            self._init_from_pca(module, X_train, seed)

        config = TrainConfig(
            max_iter=self.max_iter,
            batch_size=min(self.batch_size, X_train.shape[0]),
            learning_rate=self.learning_rate,
            beta=self.beta,
            kl_warmup=self.kl_warmup,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            verbose=bool(self.verbose),
        )
        result = train(module, X_train, X_val, config, generator)

        # float64 from here on: inference gives the same digits for a row whatever
        # the batch around it, which float32 matrix products do not guarantee.
        self.module_ = module.double().eval()
        self.n_iter_ = result.n_iter
        offset = self._log_scale_sum()
        self.loss_curve_ = [loss + offset for loss in result.loss_curve]
        if self.early_stopping:
            self.validation_scores_ = [-(v + offset) for v in result.validation_losses]
            best = result.best_validation_loss
            self.best_validation_score_ = None if best is None else -(best + offset)
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self.kl_per_component_ = self._kl_per_component(X)
        stopped = result.converged or result.interrupted
        if not stopped and result.n_iter == self.max_iter:
            warnings.warn(
                f"VAETransformer stopped at max_iter={self.max_iter} epochs while the "
                f"{'validation' if self.early_stopping else 'training'} loss was still "
                f"improving by more than tol={self.tol:g}. Increase max_iter to "
                "train longer.",
                ConvergenceWarning,
                stacklevel=3,  # past scikit-learn's _fit_context wrapper
            )
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
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

        def encode_mean(x: torch.Tensor) -> torch.Tensor:
            return self.module_.encode(x)[0]

        Z = self._apply_in_chunks(encode_mean, self._standardize(X), self.n_components)
        return Z.astype(X.dtype, copy=False)

    def inverse_transform(self, X: ArrayLike) -> NDArray[np.floating]:
        """Decode latent points into the original feature space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent points, for example the output of ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            Mean of p(x|z) in the units of the training data: the reconstruction
            for a Gaussian likelihood, probabilities for a Bernoulli one.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"X has {Z.shape[1]} columns, but this VAETransformer has "
                f"n_components={self.n_components}: inverse_transform expects latent "
                f"points of shape (n_samples, {self.n_components})."
            )
        out = self._decode_mean(Z)
        return out.astype(Z.dtype, copy=False)

    def sample(
        self,
        n_samples: int = 1,
        *,
        random_state: int | np.random.RandomState | None = None,
        noise: bool = True,
    ) -> NDArray[np.float64]:
        """Generate new rows from the fitted generative model.

        Draws z from the prior N(0, I) and passes it through the decoder.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to generate.

        random_state : int, RandomState instance or None, default=None
            Seeds the draws. None gives fresh randomness on every call, without
            touching any global random state.

        noise : bool, default=True
            Whether to draw x from p(x|z), adding the decoder's noise (Gaussian
            noise with the learned per-feature variance, or Bernoulli 0/1 draws), so
            that samples spread like the data. With False, return the decoder mean
            E[x|z]: smoother rows, probabilities for a Bernoulli likelihood.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features_in_)
            Generated rows in the units of the training data.
        """
        check_is_fitted(self)
        if isinstance(n_samples, bool) or not isinstance(n_samples, Integral):
            raise TypeError(
                f"n_samples must be a positive int, got {type(n_samples).__name__}."
            )
        if n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples}.")
        generator = torch.Generator(device=self.device_).manual_seed(
            _seed_from(random_state)
        )
        with torch.no_grad():
            z = torch.randn(
                (n_samples, self.n_components),
                generator=generator,
                device=self.device_,
                dtype=torch.float64,
            )
            out = self.module_.decode(z)
            likelihood = self.module_.likelihood
            x = likelihood.sample(out, generator) if noise else likelihood.mean(out)
        return self._unstandardize(x.cpu().numpy())

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
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        self._check_likelihood_range(X)
        half = torch.randn(
            (_N_SCORE_DRAWS // 2, self.n_components),
            generator=torch.Generator().manual_seed(0),
            dtype=torch.float64,
        )
        eps = torch.cat([half, -half]).to(self.device_)

        def elbo(x: torch.Tensor) -> torch.Tensor:
            return self.module_.elbo(x, eps)[:, None]

        per_row = self._apply_in_chunks(
            elbo, self._standardize(X), 1, width=_N_SCORE_DRAWS * X.shape[1]
        )
        return per_row[:, 0] - self._log_scale_sum()

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

    def _init_from_pca(self, module: VAE, X_train: torch.Tensor, seed: int) -> None:
        """Start at probabilistic PCA of the (standardised) training rows.

        With fewer than two training rows PCA has no variance to work with, and the
        model keeps its random initialisation.
        """
        if X_train.shape[0] < 2:
            return
        X_np = X_train.cpu().numpy().astype(np.float64)
        n_pca = min(self.n_components, *X_np.shape)
        pca = PCA(n_pca, random_state=seed % 2**32).fit(X_np)
        if not np.all(np.isfinite(pca.explained_variance_)):
            return
        noise_variance = max(pca.noise_variance_, _MIN_VARIANCE)
        with torch.no_grad():
            init_from_pca(
                module,
                pca.mean_,
                pca.components_,
                pca.explained_variance_,
                noise_variance,
            )

    def _check_likelihood_range(self, X: np.ndarray) -> None:
        if self.likelihood == "bernoulli" and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                'likelihood="bernoulli" needs values in [0, 1], got values in '
                f"[{X.min():g}, {X.max():g}]. Scale the data (e.g. MinMaxScaler) or "
                'use likelihood="gaussian".'
            )

    def _standardize(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    def _unstandardize(self, X: np.ndarray) -> np.ndarray:
        return X * self.scale_ + self.mean_

    def _log_scale_sum(self) -> float:
        """Return log |det| of the standardisation, the shift to the user's units."""
        return float(np.sum(np.log(self.scale_)))

    def _apply_in_chunks(
        self, fn: Any, X: np.ndarray, n_out: int, width: int | None = None
    ) -> np.ndarray:
        """Apply ``fn`` to float64 chunks of ``X`` on the model's device, no grad."""
        n_rows = X.shape[0]
        width = max(width or X.shape[1], n_out, 1)
        chunk = max(1, _CHUNK_ELEMENTS // width)
        out = np.empty((n_rows, n_out))
        with torch.no_grad():
            for start in range(0, n_rows, chunk):
                x = torch.tensor(X[start : start + chunk], dtype=torch.float64)
                out[start : start + chunk] = fn(x.to(self.device_)).cpu().numpy()
        return out

    def _decode_mean(self, Z: np.ndarray) -> np.ndarray:
        def decode(z: torch.Tensor) -> torch.Tensor:
            return self.module_.likelihood.mean(self.module_.decode(z))

        widths = [
            layer.out_features
            for layer in self.module_.decoder.modules()
            if isinstance(layer, torch.nn.Linear)
        ]
        width = max(widths)
        out = self._apply_in_chunks(decode, Z, self.n_features_in_, width=width)
        return self._unstandardize(out)

    def _kl_per_component(self, X: np.ndarray) -> np.ndarray:
        def kl(x: torch.Tensor) -> torch.Tensor:
            return kl_standard_normal(*self.module_.encode(x))

        return self._apply_in_chunks(kl, self._standardize(X), self.n_components).mean(
            axis=0
        )

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        module = state.get("module_")
        if module is not None and self.device_.type != "cpu":
            # Pickles load on machines without the fitting device.
            state["module_"] = copy.deepcopy(module).cpu()
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "module_" in state:
            device = self.device_
            if device.type == "cuda" and not torch.cuda.is_available():
                device = torch.device("cpu")
            self.device_ = device
            self.module_ = self.module_.to(device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device; use 'auto', 'cpu', "
            "'cuda' or 'cuda:N'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this "
            "machine (torch.cuda.is_available() is False). Use device='auto' or "
            "'cpu', or install a CUDA build of PyTorch."
        )
    return resolved


def _seed_from(random_state: int | np.random.RandomState | None) -> int:
    """Return a 63-bit torch seed for a scikit-learn ``random_state``.

    None draws fresh entropy rather than from NumPy's global generator, so that an
    unseeded fit leaves the global random state untouched.
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
    if isinstance(random_state, Integral):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int64).max, dtype=np.int64))
    raise ValueError(
        f"random_state must be None, an int or a numpy RandomState, got "
        f"{random_state!r}."
    )
