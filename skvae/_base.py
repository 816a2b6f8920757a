"""What the two estimators share: parameters, their constraints and docs, tags.

``VAETransformer`` and ``VAEImputer`` take the same model and training
parameters with the same meaning. Their constraints live in
``BaseVAE._parameter_constraints`` (each estimator adds its own, as
scikit-learn's ``MLPClassifier`` does over ``BaseMultilayerPerceptron``), and
their descriptions in ``MODEL_PARAMETERS`` and ``TRAINING_PARAMETERS``, which
``fill_doc`` puts into each docstring where it says ``{model_parameters}`` and
``{training_parameters}``, with each estimator's own default where the two
differ (``n_iter_no_change``: 10 for the transformer, 30 for the imputer).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any, ClassVar, TypeVar

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ._version import __version__

MODEL_PARAMETERS = """\
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
      columns are categorical, and so are its numeric columns of whole numbers
      with at most 5 distinct values (a 0/1 flag, a rating), and those of other
      numbers that repeat at most 20 values (over half in 20 rows or more) off any
      grid they might fill (a rate per industry), unless ``families`` gives
      them a family (not in ``partial_fit``, whose first batch cannot know
      every level); other numeric columns are continuous. Arrays have no
      categorical columns.
    - array-like of str: column names (needs a DataFrame);
    - array-like of int: column indices;
    - array-like of bool: a mask with one entry per column;
    - None: no categorical columns.

    The levels of a categorical column are its observed values (sorted), or
    the categories of a category column.

families : "auto", str or dict, default="auto"
    The likelihood family of each continuous column (Gaussian likelihood
    only; see the user guide's "Column likelihoods"):

    - ``"gaussian"``: a Gaussian density.
    - ``"point_mass"``: a Gaussian censored at each bound that holds at least
      1% of the training values (exact zeros, a floor, a cap): the bound has a
      probability, the values between the bounds a density.
    - ``"discrete"``: a Gaussian discretised to the column's grid (whole
      numbers, or the decimals its values are written with), so that every
      value has a probability; censored at its point masses too.

    - ``"categorical"`` (in a dict only): the column's values are its levels,
      as if listed in ``categorical_features``.

    ``"auto"`` chooses from the data: whole-number columns are ``"discrete"``
    (but categorical with at most 5 values, see ``categorical_features``),
    other columns with a point mass at a bound ``"point_mass"``, the rest
    ``"gaussian"``. An array's columns carry no types: there whole numbers
    stay ``"gaussian"`` (pixels, 0/1 indicators of a feature matrix) unless
    asked for. A family name applies to every continuous column; a dict
    maps column names (a DataFrame) or indices to families, and the columns
    it leaves out are ``"auto"``. ``column_likelihoods_`` says what each
    column got.

scaling : {"auto", "standard", "global", "quantile"}, default="auto"
    How continuous columns are scaled before the model sees them (they are
    always centred). ``"standard"`` divides each by its own standard deviation,
    as StandardScaler: right for columns in different units (age, income).
    ``"global"`` divides every column by one scale (the root mean square of
    their standard deviations), which keeps their relative scales: right for
    columns in one unit (pixels, counts, spectra), where a high-variance column
    matters more and a nearly constant one should stay small rather than be
    blown up to unit variance. ``"quantile"`` standardises each column, then
    maps it through its training quantiles to normal scores (as
    :class:`~sklearn.preprocessing.QuantileTransformer` with
    ``output_distribution="normal"``, piecewise linear and going on linearly
    beyond the training range), and each family applies to the scores: right
    for skewed and long-tailed columns (incomes, prices, durations), whose
    generated values then follow the training marginal; point masses stay
    masses and a grid stays a grid. Its knots are fixed by ``fit``, by the
    first batch of ``partial_fit``, or by the sample a dask collection's
    set-up reads. ``"auto"`` (the default) maps only the columns whose sample
    skewness is at least 2 in size (weighted by ``sample_weight``), and
    standardises the rest as ``"standard"`` does: on the synthesis benchmark it
    fits credit's long-tailed ``share``, ``expenditure`` and ``months`` and
    leaves wage's and diamonds' moderately skewed targets as they were (see the
    user guide's likelihoods page). Likelihoods, ``score`` and the PCA start are in
    the data's units either way, so ``GridSearchCV`` can choose it by
    ``score`` or by a downstream metric. Ignored with
    ``likelihood="bernoulli"``.

handle_unknown : {"ignore", "error"}, default="ignore"
    What ``transform`` and ``score_samples`` do with a category that was not
    seen during fit. ``"ignore"`` treats it as a missing value (as
    ``OneHotEncoder(handle_unknown="ignore")`` gives it no column); ``"error"``
    raises a ValueError naming the column and the values.
"""

TRAINING_PARAMETERS = """\
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

n_iter_no_change : int, default={n_iter_no_change}
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

n_threads : int, "auto" or None, default="auto"
    Number of torch threads each fit, ``partial_fit``, ``transform`` and the other
    methods use on the CPU; torch's own setting is restored after the call.
    ``"auto"`` uses as many as the cores other processes leave free (read from
    ``/proc`` on Linux), and at most one per 1e7 multiply-adds of one operation
    (rows times the network's weights): on tiny networks, and on a machine busy
    with other work, extra threads spend more time waiting for each other than
    they save (see the practical guide). An int fixes
    the number; None leaves torch's setting (``torch.set_num_threads``) as it is.
    Results agree across thread counts to about 1e-6, not to the last digit.

random_state : int, RandomState instance or None, default=None
    Seeds weight initialisation, shuffling, the validation split and the noise
    of the reparameterisation. Pass an int for reproducible fits. The global
    NumPy, PyTorch and ``random`` states are neither used nor changed.

verbose : bool or int, default=False
    Whether to show a progress bar with the training loss (``fit``), or a line
    with each ``partial_fit`` call's rows and loss. Messages such as the reason
    for stopping go to the ``skvae`` logger.
"""

T = TypeVar("T", bound=type)

# What scikit-learn's callback machinery keeps on an estimator during a fit: its
# own teardown, after the fit, needs it whatever happened.
_CALLBACK_STATE = (
    "_callback_fit_ctx",
    "_skl_callbacks_to_teardown",
    "_parent_callback_ctx",
    "_skl_callbacks",
)


@contextmanager
def all_or_nothing(estimator: Any) -> Iterator[None]:
    """Put the estimator's attributes back as they were if the block fails.

    A fit is whole or not at all: what ``validate_data`` resets before the fit can
    fail (``n_features_in_``, ``feature_names_in_``) and anything else the block
    set is undone, so that a failed or interrupted fit leaves the previous model
    (or an unfitted estimator) intact. The fits build their model aside and
    assign it at the end (see ``_setup``); this covers the rest.
    """
    saved = dict(vars(estimator))
    try:
        yield
    except BaseException:
        state = vars(estimator)
        for name in [n for n in state if n not in saved]:
            if name not in _CALLBACK_STATE:
                del state[name]
        state.update(saved)
        raise


def fill_doc(cls: T) -> T:
    """Put the shared parameter docs into ``cls.__doc__`` at their placeholders.

    A placeholder stands alone on a line, indented as the parameters are, with
    a blank line after it.
    """
    doc = inspect.cleandoc(cls.__doc__)
    for name, text in (
        ("{model_parameters}", MODEL_PARAMETERS),
        ("{training_parameters}", TRAINING_PARAMETERS),
    ):
        doc = doc.replace(name, text.rstrip("\n"))
    # Defaults that differ between the estimators, read off their signatures.
    signature = inspect.signature(cls.__init__).parameters
    for name in ("n_iter_no_change",):
        doc = doc.replace(f"{{{name}}}", repr(signature[name].default))
    cls.__doc__ = doc + "\n"  # closing quotes on a line of their own, as written
    return cls


def _doc_version() -> str:
    """Return the documentation version of this release: ``dev`` or ``stable``."""
    return "dev" if "dev" in __version__ else "stable"


class _TorchDevice(HasMethods):
    """A ``torch.device``, recognised without importing torch.

    ``import skvae`` leaves torch to the first fit; a device object can only
    exist once torch is imported. (A subclass of one of the constraint classes
    scikit-learn's ``make_constraint`` takes as they are.)
    """

    def __init__(self) -> None:
        super().__init__([])

    def is_satisfied_by(self, val: Any) -> bool:
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(val, torch.device)

    def __str__(self) -> str:
        return "an instance of 'torch.device'"


# Parameters added after models were first saved, with the value a model loaded
# from an older file takes (a class adds its own in ``_added_parameters``).
ADDED_PARAMETERS = {"n_threads": "auto"}


class BaseVAE(TransformerMixin, BaseEstimator):
    """Base of the VAE transformers: shared constraints, tags and doc links.

    Not an estimator on its own; ``VAETransformer`` and ``VAEImputer`` declare
    their ``__init__`` with every parameter, as scikit-learn asks.
    """

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "likelihood": [StrOptions({"gaussian", "bernoulli"})],
        "categorical_features": ["array-like", StrOptions({"from_dtype"}), None],
        "families": [StrOptions({"auto", "gaussian", "point_mass", "discrete"}), dict],
        "scaling": [StrOptions({"standard", "global", "quantile", "auto"})],
        "handle_unknown": [StrOptions({"ignore", "error"})],
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
        "device": [str, _TorchDevice()],
        "n_threads": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # The "?" link of scikit-learn's HTML repr points at the class's API page.
    _doc_link_module = "skvae"
    _doc_link_template = "https://skvae.readthedocs.io/en/{version}/generated/skvae.{estimator_name}.html"

    def _doc_link_url_param_generator(self) -> dict[str, str]:
        return {"version": _doc_version(), "estimator_name": type(self).__name__}

    # Parameters of this class added after models were first saved: name and
    # the value a model from an older file takes.
    _added_parameters: ClassVar[dict] = {}

    def __setstate__(self, state: dict) -> None:
        # Files saved before a parameter existed load with its default.
        added = {**ADDED_PARAMETERS, **self._added_parameters}
        super().__setstate__({**added, **state})

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        return tags
