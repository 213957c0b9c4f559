"""Uncertain assumptions and prices as distributions, sampled once into Monte Carlo draws.

A sweep's ``uncertain:`` section (or ``tokensweep point --dist``) gives any numeric
assumption, or a hardware price (``wse3.capex_usd``, ``h100-sxm.usd_per_hour``: the names
``tokensweep sensitivity --range`` takes), a distribution. :class:`Uncertain` draws them on
a Latin hypercube (every marginal stratified, so a few hundred draws give steady quantiles),
independently of each other, each from a stream seeded by the seed and its name: the same
spec always gives the same draws, whatever order it lists them in.

The draws reach the compiled kernels as tables with a leading draw dim (a parameter matrix
``draws x P`` and one hardware table per draw: :meth:`Draws.parameter_matrix`,
:meth:`Draws.hardware_tables`); the kernels loop over
them without Python in between (:data:`engine.model.kernels.DRAW_KERNELS`). A variable gets a
``draw`` dim only when a drawn input can move it (:meth:`Uncertain.moves`).

>>> u = Uncertain.parse({"draws": 4, "distributions": {"mfu_decode": {"uniform": [0.3, 0.6]}}}, "uncertain")
>>> d = u.sample()
>>> sorted(((d.values["mfu_decode"] - 0.3) // 0.075).tolist())  # one value in each quarter of [0.3, 0.6]
[0.0, 1.0, 2.0, 3.0]
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.axes import AXES, NUMERIC_PARAMETERS
from engine.errors import UserError, did_you_mean
from engine.model.records import MAX_USD
from engine.units import parse_quantity

#: Each distribution's arguments, in the order a spec lists them.
DISTRIBUTIONS = {
    "uniform": ("low", "high"),
    "loguniform": ("low", "high"),
    "triangular": ("low", "mode", "high"),
    "normal": ("mean", "sd"),
    "lognormal": ("median", "sigma"),  # sigma: standard deviation of the natural log
}
#: Price fields a distribution may name, after the hardware name and a dot.
PRICE_FIELDS = ("capex_usd", "usd_per_hour")
DEFAULT_DRAWS = 200
MAX_DRAWS = 100_000
#: The interval ``point`` prints and the figures read: 5th to 95th percentile.
INTERVAL = (0.05, 0.95)
#: Assumptions a draw may not move: counts and codes are choices of a sweep, not quantities.
NOT_DRAWN = {n for n in NUMERIC_PARAMETERS if AXES[n].integer}


@dataclass(frozen=True)
class Distribution:
    """One distribution: its kind and arguments (base units)."""

    kind: str
    args: tuple[float, ...]

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Values at cumulative probabilities ``u`` (scipy.stats' inverse CDFs)."""
        from scipy import stats

        a = self.args
        if self.kind == "uniform":
            return stats.uniform(a[0], a[1] - a[0]).ppf(u)
        if self.kind == "loguniform":
            return stats.loguniform(a[0], a[1]).ppf(u)
        if self.kind == "triangular":
            return stats.triang((a[1] - a[0]) / (a[2] - a[0]), loc=a[0], scale=a[2] - a[0]).ppf(u)
        if self.kind == "normal":
            return stats.norm(a[0], a[1]).ppf(u)
        return stats.lognorm(a[1], scale=a[0]).ppf(u)

    def describe(self) -> str:
        return f"{self.kind}({', '.join(f'{v:.6g}' for v in self.args)})"


def parse_distribution(raw: Any, field: str) -> Distribution:
    """``{uniform: [1M, 3M]}`` and the other forms of :data:`DISTRIBUTIONS`, checked."""
    forms = ", ".join(f"{{{k}: [{', '.join(v)}]}}" for k, v in DISTRIBUTIONS.items())
    if not isinstance(raw, dict) or len(raw) != 1:
        raise UserError(f"{field}: expected one distribution ({forms}), got {raw!r}")
    ((kind, args),) = raw.items()
    if kind not in DISTRIBUTIONS:
        raise UserError(f"{field}: unknown distribution '{kind}' ({did_you_mean(str(kind), DISTRIBUTIONS)})")
    names = DISTRIBUTIONS[kind]
    if not isinstance(args, list) or len(args) != len(names):
        raise UserError(f"{field}.{kind}: expected [{', '.join(names)}], got {args!r}")
    values = tuple(parse_quantity(v, f"{field}.{kind}.{n}") for v, n in zip(args, names))
    if not all(math.isfinite(v) for v in values):
        raise UserError(f"{field}.{kind}: every argument must be finite")
    if kind in ("uniform", "loguniform", "triangular") and not values[0] < values[-1]:
        raise UserError(f"{field}.{kind}: low must be below high")
    if kind == "triangular" and not values[0] <= values[1] <= values[2]:
        raise UserError(f"{field}.triangular: mode must lie between low and high")
    if kind == "loguniform" and values[0] <= 0:
        raise UserError(f"{field}.loguniform: low must be > 0")
    if kind == "normal" and values[1] <= 0:
        raise UserError(f"{field}.normal: sd must be > 0")
    if kind == "lognormal" and (values[0] <= 0 or values[1] <= 0):
        raise UserError(f"{field}.lognormal: median and sigma must be > 0")
    return Distribution(str(kind), values)


def price_name(name: str) -> tuple[str, str] | None:
    """``(hardware, field)`` for a price name such as ``wse3.capex_usd``; None for an assumption."""
    if "." not in name:
        return None
    hardware, field = name.rsplit(".", 1)
    return hardware, field


@dataclass(frozen=True)
class Draws:
    """Sampled values of every uncertain name (``values[name]`` has one entry per draw)."""

    values: Mapping[str, np.ndarray]
    n: int

    def parameter_matrix(self, base: np.ndarray) -> np.ndarray:
        """The kernels' parameter vector once per draw (draws x P), drawn columns replaced."""
        from engine.model.tables import P

        matrix = np.repeat(base[None, :], self.n, axis=0)
        for name, values in self.values.items():
            if price_name(name) is None:
                matrix[:, P[name]] = values
        return np.ascontiguousarray(matrix)

    def hardware_tables(self, table: np.ndarray, hardware: Sequence, price: str) -> np.ndarray:
        """The hardware table once per draw (draws x H x columns), drawn prices replaced."""
        from engine.model.tables import HW

        tables = np.repeat(table[None, :, :], self.n, axis=0)
        index = {h.name: i for i, h in enumerate(hardware)}
        column = {"on_demand": HW.rent_on_demand, "spot": HW.rent_spot}
        for name, values in self.values.items():
            parsed = price_name(name)
            if parsed is None or parsed[0] not in index:
                continue
            unit, field = parsed
            if field == "usd_per_hour" and price not in column:
                raise ValueError(f"{name}: scenario {price} reads no rental rate (Uncertain.check_against refuses it)")
            tables[:, index[unit], HW.capex if field == "capex_usd" else column[price]] = values
        return np.ascontiguousarray(tables)


@dataclass(frozen=True)
class Uncertain:
    """A sweep's ``uncertain:`` section: distributions by name, how many draws, the seed, and
    the quantiles to keep instead of every draw (None: a ``draw`` dim)."""

    distributions: tuple[tuple[str, Distribution], ...]
    draws: int = DEFAULT_DRAWS
    seed: int = 0
    quantiles: tuple[float, ...] | None = None

    @classmethod
    def parse(cls, raw: Any, field: str) -> Uncertain:
        allowed = ("distributions", "draws", "seed", "quantiles")
        if not isinstance(raw, dict):
            raise UserError(f"{field}: expected a mapping with {', '.join(allowed)}")
        for key in raw:
            if key not in allowed:
                raise UserError(f"{field}.{key}: unknown key ({did_you_mean(str(key), allowed)})")
        given = raw.get("distributions")
        if not isinstance(given, dict) or not given:
            raise UserError(f"{field}.distributions: give at least one name: distribution (e.g. "
                            "wse3.capex_usd: {uniform: [1M, 3M]})")  # fmt: skip
        distributions = tuple((str(n), parse_distribution(d, _where(field, n))) for n, d in given.items())
        flag = field.startswith("--")  # point's options name draws and seed themselves
        draws = _whole(raw.get("draws", DEFAULT_DRAWS), "--draws" if flag else f"{field}.draws", 2, MAX_DRAWS)
        seed = _whole(raw.get("seed", 0), "--seed" if flag else f"{field}.seed", 0, 2**32 - 1)
        quantiles = raw.get("quantiles")
        if quantiles is not None:
            if not isinstance(quantiles, list) or not quantiles:
                raise UserError(f"{field}.quantiles: expected a list of probabilities, e.g. [0.05, 0.5, 0.95]")
            quantiles = tuple(parse_quantity(q, f"{field}.quantiles") for q in quantiles)
            if not all(0 <= q <= 1 for q in quantiles) or any(b <= a for a, b in itertools.pairwise(quantiles)):
                raise UserError(
                    f"{field}.quantiles: probabilities must lie in [0, 1] and increase, got {list(quantiles)}"
                )
        uncertain = cls(distributions, draws, seed, quantiles)
        uncertain.check_values(field)
        return uncertain

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.distributions)

    @functools.lru_cache(maxsize=16)  # noqa: B019 - frozen and hashable; a spec is checked, resolved, evaluated
    def sample(self) -> Draws:
        """The draws (sampled once per section, however often asked): a Latin hypercube (each name's column stratified, the columns independent).

        Each name's column comes from its own stream, seeded by the seed and the name: the same
        name draws the same values whatever order the names are listed in and whatever else is
        drawn beside it."""
        from scipy.stats import qmc

        values = {}
        for name, distribution in self.distributions:
            stream = np.random.default_rng([self.seed, *name.encode()])
            u = qmc.LatinHypercube(d=1, seed=stream).random(self.draws)[:, 0]
            with np.errstate(all="ignore"):  # an overflowing distribution is refused by check_values
                values[name] = distribution.ppf(u)
        return Draws(values, self.draws)

    def check_values(self, field: str) -> None:
        """Every drawn value inside the bounds of what it replaces (one line naming the first that is not)."""
        values = self.sample().values
        for name, _ in self.distributions:
            where = _where(field, name)
            drawn = values[name]
            if not np.isfinite(drawn).all():
                raise UserError(f"{where}: some draws are not finite numbers (narrow the distribution)")
            low, high = float(drawn.min()), float(drawn.max())
            if price_name(name) is not None:
                if price_name(name)[1] not in PRICE_FIELDS:
                    raise UserError(
                        f"{where}: unknown price '{price_name(name)[1]}' (allowed: {', '.join(PRICE_FIELDS)})"
                    )
                if low <= 0:
                    raise UserError(f"{where}: draws reach {low:g}; a price must be > 0 (narrow the distribution)")
                if high > MAX_USD:
                    raise UserError(
                        f"{where}: draws reach {high:g}; a price is at most {MAX_USD:g} USD (narrow the distribution)"
                    )
                continue
            if name not in AXES or AXES[name].role != "parameter" or name in NOT_DRAWN:
                allowed = [n for n in NUMERIC_PARAMETERS if n not in NOT_DRAWN]
                if name in AXES and AXES[name].role in ("parameter", "choice"):
                    raise UserError(
                        f"{where}: '{name}' is a choice or a count, not a quantity to draw (make it an axis)"
                    )
                raise UserError(f"{where}: not a numeric assumption or a price such as wse3.capex_usd "
                                f"({did_you_mean(name, allowed)})")  # fmt: skip
            axis = AXES[name]
            for v in (low, high):
                below = v <= axis.low if axis.low_open else v < axis.low
                if below or v > axis.high:
                    raise UserError(
                        f"{where}: draws reach {v:g}, outside {axis.bounds_text()} (narrow the distribution)"
                    )

    def check_against(self, hardware: Sequence, price: str, axes: Sequence[str], field: str) -> None:
        """Names that a resolved sweep must know: listed hardware, a price its scenario uses, no axis twice."""
        from engine.model.pricing import price_source

        by_name = {h.name: h for h in hardware}
        for name in self.names:
            where = _where(field, name)
            if name in axes:
                raise UserError(f"{where}: also given as an axis; keep one")
            parsed = price_name(name)
            if parsed is None:
                continue
            unit, price_field = parsed
            if unit not in by_name:
                raise UserError(f"{where}: hardware '{unit}' is not evaluated here ({did_you_mean(unit, by_name)})")
            if price_field == "usd_per_hour" and price_source(by_name[unit], price) != "rental":
                raise UserError(f"{where}: {unit} has no {price} rental rate here (its cost is the TCO rate); "
                                f"give {unit}.capex_usd a distribution instead")  # fmt: skip

    def moves(self, reads: frozenset[str], name: str, hardware: Sequence, prices: Sequence[str]) -> bool:
        """Whether a drawn input can move a variable that reads ``reads`` (variable ``name``) in any
        of the price scenarios evaluated (a capex draw moves costs only where a unit's rate is TCO)."""
        from engine.model.pricing import price_source

        for drawn in self.names:
            parsed = price_name(drawn)
            if parsed is None:
                if drawn in reads:
                    return True
                continue
            unit, field = parsed
            if unit not in {h.name for h in hardware}:
                continue
            if field == "capex_usd" and name == "capex_usd":
                return True
            tco = any(price_source(_named(hardware, unit), str(p)) == "tco" for p in prices)
            if "price" in reads and (field == "usd_per_hour" or tco):
                return True
        return False

    def describe(self, cube: bool = True) -> str:
        """One line: what is drawn, how, and (``cube``) what the cube keeps of it."""
        drawn = ", ".join(f"{n} {d.describe()}" for n, d in self.distributions)
        if not cube:
            return f"{self.draws:,} draws (Latin hypercube, seed {self.seed}) of {drawn}"
        kept = (
            f"quantiles {', '.join(f'{q:g}' for q in self.quantiles)} kept (dim quantile)"
            if self.quantiles is not None
            else "every draw kept (dim draw)"
        )
        return f"{self.draws:,} draws (Latin hypercube, seed {self.seed}) of {drawn}; {kept}"

    def canonical(self) -> dict:
        return {
            "distributions": {n: {d.kind: list(d.args)} for n, d in self.distributions},
            "draws": self.draws,
            "seed": self.seed,
            "quantiles": list(self.quantiles) if self.quantiles is not None else None,
        }


def _where(field: str, name: str) -> str:
    """How an error names one distribution: ``uncertain.distributions.NAME`` or ``--dist NAME``."""
    return f"{field} {name}" if field.startswith("--") else f"{field}.distributions.{name}"


def _named(hardware: Sequence, name: str):
    return next(h for h in hardware if h.name == name)


def _whole(raw: Any, field: str, low: int, high: int) -> int:
    value = parse_quantity(raw, field) if not isinstance(raw, bool) else math.nan
    if not (math.isfinite(value) and value == int(value) and low <= value <= high):
        raise UserError(f"{field}: expected a whole number from {low:,} to {high:,}, got {raw!r}")
    return int(value)


def summarise(values: np.ndarray, quantiles: Sequence[float], axis: int) -> np.ndarray:
    """Quantiles over the draw axis, in its place (NaN where any draw is NaN: missing stays missing).

    Floats interpolate linearly between order statistics as ``numpy.quantile`` does by default;
    counts, flags and codes take an actual draw's value (its ``inverted_cdf``). One sort along
    the draws (numpy's vectorised sort, about 3x ``numpy.quantile`` here), then gathers."""
    q = np.asarray(quantiles, dtype=np.float64)
    n = values.shape[axis]
    ordered = np.sort(np.moveaxis(values, axis, -1).astype(np.float64), axis=-1)  # NaN sorts last
    if np.issubdtype(values.dtype, np.floating):
        h = (n - 1) * q
        lo = np.minimum(np.floor(h).astype(np.int64), n - 1)
        hi = np.minimum(lo + 1, n - 1)
        t = h - lo
        a, b = ordered[..., lo], ordered[..., hi]
        out = np.where(t < 0.5, a + (b - a) * t, b - (b - a) * (1.0 - t))
        out[np.isnan(ordered[..., -1])] = np.nan
    else:
        out = ordered[..., np.maximum(np.ceil(n * q).astype(np.int64) - 1, 0)]
    return np.moveaxis(out, -1, axis).astype(values.dtype)
