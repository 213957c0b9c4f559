"""The cube schema, used both to write cubes and to read them back.

Writing: :class:`CubeSchema` derives from a :class:`~engine.sweep.spec.ResolvedSpec` each
variable's cube dims (its kernel dims with the context filled in and the assumption axes
it reads), shapes, storage dtypes, coordinates with units, and the provenance attributes.

Reading: :func:`open_cube` opens a store with plain xarray, and :class:`CubeInfo` parses
the attributes the schema wrote (spec, assumptions, workload, completeness), so ``show``,
``slice`` and the figures never pick attributes apart by string keys themselves.
"""

from __future__ import annotations

import functools
import json
import math
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.axes import AXES
from engine.errors import UserError
from engine.model.identity import engine_fingerprint
from engine.model.pricing import price_source, unit_usd_per_hour
from engine.model.variables import CONTEXT, KERNEL_DIMS, TOKEN_TYPE, TOKEN_TYPES, Variable
from engine.sweep.spec import ResolvedSpec
from engine.units import cf_attrs
from engine.version import __version__

CONVENTIONS = "decimal units (GB = 1e9 bytes); time in s; money in USD; params counted in units"
NAN_MEANING = "cost_per_mtok_by_type_usd is NaN for a token type absent from the workload mix"


@dataclass(frozen=True, eq=False)
class CubeSchema:
    """Dims, shapes, dtypes, coordinates and attributes of the cube a resolved spec makes."""

    spec: ResolvedSpec
    _dims: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def dims(self) -> tuple[str, ...]:
        """Every grid dim in cube order (``token_type`` aside)."""
        return tuple(self.spec.axes)

    @property
    def context_dims(self) -> tuple[str, ...]:
        return ("isl", "osl") if self.spec.osl_is_axis else ("isl",)

    def var_dims(self, var: Variable) -> tuple[str, ...]:
        """Cube dims of a variable: kernel dims with the context and the assumption axes it reads."""
        if var.name not in self._dims:
            reads = tuple(p for p in self.spec.parameter_dims if p in var.reads)
            dims: list[str] = []
            for d in var.dims:
                if d == "model":
                    dims.append(self.spec.model_dim)
                elif d == CONTEXT:
                    dims.extend(self.context_dims)
                elif d == TOKEN_TYPE:
                    dims.extend(reads)
                    dims.append(d)
                else:
                    dims.append(d)
            if TOKEN_TYPE not in var.dims:
                dims.extend(reads)
            if self.moved_by_draws(var):  # last but for the token type
                dims.insert(len(dims) - (TOKEN_TYPE in var.dims), self.spec.draw_dim)
            self._dims[var.name] = tuple(dims)
        return self._dims[var.name]

    def moved_by_draws(self, var: Variable) -> bool:
        """Whether a drawn assumption or price can move the variable (it then has the draw dim)."""
        spec = self.spec
        if spec.uncertain is None:
            return False
        prices = spec.axes.get("price", [spec.assumptions.price])  # every scenario the cube holds
        return spec.uncertain.moves(var.reads, var.name, spec.hardware, prices)

    def dim_size(self, dim: str) -> int:
        return len(TOKEN_TYPES) if dim == TOKEN_TYPE else len(self.spec.axes[dim])

    def var_shape(self, var: Variable) -> tuple[int, ...]:
        return tuple(self.dim_size(d) for d in self.var_dims(var))

    def storage_dtype(self, var: Variable) -> np.dtype:
        """float32 cubes store floats single; counts and flags keep their dtype."""
        dtype = np.dtype(var.dtype)
        return np.dtype(np.float32) if dtype == np.float64 and self.spec.precision == "float32" else dtype

    def bytes_uncompressed(self) -> int:
        return sum(math.prod(self.var_shape(v)) * self.storage_dtype(v).itemsize for v in self.spec.variables)

    def var_attrs(self, var: Variable) -> dict[str, str]:
        return cf_attrs(var.units, var.long_name)

    # ------------------------------------------------------------------ coordinates and attrs
    def coords(self) -> dict:
        spec = self.spec
        coords: dict = {}
        for d, values in spec.axes.items():
            coords[d] = (d, values, AXES[d].attrs)
        coords[TOKEN_TYPE] = (TOKEN_TYPE, np.array(TOKEN_TYPES, dtype=object), AXES[TOKEN_TYPE].attrs)
        md = spec.model_dim
        models = spec.models
        model_fields = {
            "total_params": ("params", "total parameters", [m.total_params for m in models]),
            "active_params": ("params", "active parameters per token", [m.active_params for m in models]),
            "layers": ("layers", "transformer layers", [m.layers for m in models]),
            "experts": ("count", "routed experts (1 = dense)", [m.experts for m in models]),
            "experts_per_token": ("count", "routed experts per token", [m.experts_per_token for m in models]),
            "hidden_size": ("elements", "hidden size", [m.hidden_size for m in models]),
            "query_width": ("elements", "attention query width", [m.query_width for m in models]),
            "decode_query_width": (
                "elements",
                "attention width of a decode step (MLA: absorbed, over the latent)",
                [m.decode_query_width for m in models],
            ),
            "kv_elements_per_token": (
                "elements",
                "KV elements per token below every window",
                [m.kv_elements_per_token_full for m in models],
            ),
            "synthetic": ("bool", "synthetic (scaled) model", [m.synthetic for m in models]),
            "attention": ("", "attention type", [m.attention for m in models]),
        }
        for name, (units, long_name, values) in model_fields.items():
            if name == "total_params" and md == "params":
                continue
            coords[name] = (md, _stable(np.asarray(values)), cf_attrs(units, long_name))
        a, hardware = spec.assumptions, spec.hardware
        hw_fields = {
            "kind": ("", "hardware kind", [h.kind for h in hardware]),
            "memory_bytes": ("bytes", "memory per unit", [h.memory_gb * 1e9 for h in hardware]),
            "memory_bandwidth": ("bytes/s", "memory bandwidth per unit", [h.memory_bw_tbs * 1e12 for h in hardware]),
            "bf16_flops": ("FLOP/s", "dense BF16 peak per unit", [h.bf16_tflops * 1e12 for h in hardware]),
            "capex_per_unit_usd": ("USD", "capital cost per unit", [h.capex_usd for h in hardware]),
            "power_kw": ("kW", "power per unit", [h.power_kw for h in hardware]),
            "scaleup_domain": (
                "count",
                "scale-up domain size in units (0 = none)",
                [h.scaleup_domain or 0 for h in hardware],
            ),
            "unit_usd_per_hour": (
                "USD/h",
                "hourly rate per unit at the base parameters",
                [unit_usd_per_hour(h, a) for h in hardware],
            ),
            "price_source": (
                "",
                "rental rate, or tco where the scenario lists none",
                [price_source(h, a.price) for h in hardware],
            ),
        }
        if spec.uncertain is not None:  # the catalog's values, while the cube's figures draw some of them
            note = " (catalog value at the base parameters; this cube draws prices or assumptions: see uncertain)"
            for name in ("capex_per_unit_usd", "unit_usd_per_hour"):
                units, long_name, values = hw_fields[name]
                hw_fields[name] = (units, long_name + note, values)
        for name, (units, long_name, values) in hw_fields.items():
            coords[name] = ("hardware", _stable(np.asarray(values)), cf_attrs(units, long_name))
        if not spec.osl_is_axis:
            coords["osl"] = (
                "isl",
                spec.derived_osl,
                {"units": "tokens", "long_name": f"output tokens per turn, derived from the {spec.workload.name} mix"},
            )
        return coords

    def attrs(self, created: str) -> dict:
        """Provenance as plain JSON values (Zarr attributes are JSON: nothing nested as a string)."""
        spec = self.spec
        return {
            "title": f"tokensweep cube: {spec.name}",
            "Conventions": "CF-1.10",
            "comment": CONVENTIONS,
            "history": f"{created} {command_line()}",
            "source": f"tokensweep {__version__}",
            "software": software_versions(),
            **({"source_commit": commit} if (commit := source_commit()) else {}),
            "engine_version": __version__,
            "catalog_fingerprint": spec.catalog_fingerprint,
            "spec": spec.canonical,
            "spec_fingerprint": spec.fingerprint,
            "engine_fingerprint": engine_fingerprint(),
            "created": created,
            "assumptions": spec.assumptions.model_dump(mode="json"),
            "profile": spec.profile,
            "workload": spec.workload.model_dump(mode="json"),
            "parameter_axes": list(spec.parameter_dims),
            "nan_meaning": NAN_MEANING,
            "complete": 0,
        }


#: The ``tokensweep`` command being run, set by the CLI (else the process's own command line).
COMMAND: ContextVar[str | None] = ContextVar("tokensweep_command", default=None)


def command_line() -> str:
    """The command that made the cube, as a shell would read it (CF ``history``)."""
    import shlex
    import sys

    if COMMAND.get():
        return COMMAND.get()
    words = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else ["python"]
    return " ".join(shlex.quote(w) for w in words)


def software_versions() -> dict[str, str]:
    """Versions of the packages that computed and wrote the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("tokensweep", "numpy", "numba", "xarray", "zarr", "dask", "pydantic"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


@functools.lru_cache(maxsize=1)
def source_commit() -> str | None:
    """The git commit of the engine's checkout (``-dirty`` with local edits), or None when installed
    from a package or git is absent."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "diff-index", "--quiet", "HEAD", "--"], capture_output=True, timeout=5
        ).returncode
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("-dirty" if dirty else "")


def _stable(values: np.ndarray) -> np.ndarray:
    """Strings as variable-length (object) arrays: Zarr v3 has a spec for those, not for fixed UTF-32."""
    return values.astype(object) if values.dtype.kind == "U" else values


assert KERNEL_DIMS[-1] == TOKEN_TYPE  # var_dims places assumption axes before token_type


# ---------------------------------------------------------------------- reading cubes
@dataclass(frozen=True)
class CubeInfo:
    """What a cube's attributes say, parsed once."""

    name: str
    complete: bool
    spec: dict
    assumptions: dict
    workload: dict
    engine_version: str
    catalog_fingerprint: str
    spec_fingerprint: str
    created: str
    profile: str

    @property
    def uncertain(self):
        """The sweep's distributions (:class:`engine.model.uncertain.Uncertain`), or None."""
        return _uncertain(self.spec)

    @classmethod
    def of(cls, ds) -> CubeInfo:
        attrs = ds.attrs
        spec = attr_value(attrs.get("spec"))
        return cls(
            name=str(spec.get("name", "?")),
            complete=_complete(attrs.get("complete", 0)),
            spec=spec,
            assumptions=attr_value(attrs.get("assumptions")),
            workload=attr_value(attrs.get("workload")),
            engine_version=str(attrs.get("engine_version", "")),
            catalog_fingerprint=str(attrs.get("catalog_fingerprint", "")),
            spec_fingerprint=str(attrs.get("spec_fingerprint", "")),
            created=str(attrs.get("created", "")),
            profile=str(attrs.get("profile", "")),
        )


def _uncertain(spec: dict):
    from engine.model.uncertain import Uncertain

    section = spec.get("uncertain")
    return None if not section else Uncertain.parse(section, "cube: spec.uncertain")


def _complete(value) -> bool:
    """The ``complete`` attribute as tokensweep writes it (0 or 1); anything else is one line."""
    if isinstance(value, bool) or value in (0, 1, "0", "1"):
        return bool(int(value))
    raise UserError(
        f"cube: attribute 'complete' is {value!r} (tokensweep writes 0 or 1): the store's metadata was edited or damaged"
    )


def attr_value(value) -> dict:
    if isinstance(value, dict):
        return value
    try:
        return json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}


def open_cube(path: str | Path):
    """Open a cube (plain ``xarray.open_zarr``), local or at an fsspec URL; incomplete cubes open too.

    >>> import engine
    >>> engine.open_cube("no/such.zarr")
    Traceback (most recent call last):
    ...
    engine.errors.UserError: cube: no/such.zarr is not a Zarr store (no zarr.json)
    """
    import xarray as xr

    from engine.sweep.location import location, url

    path = location(path, "cube")
    try:
        found = (path / "zarr.json").exists()
    except Exception as exc:  # a remote backend's own errors (no credentials, ...) are not OSErrors
        raise UserError(f"cube: cannot reach {path} ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not found:
        raise UserError(f"cube: {path} is not a Zarr store (no zarr.json)")
    try:
        metadata = json.loads((path / "zarr.json").read_text())
        consolidated = isinstance(metadata, dict) and bool(metadata.get("consolidated_metadata"))
        ds = xr.open_zarr(url(path), consolidated=consolidated, zarr_format=3)
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            raise
        raise UserError(
            f"cube: {path} is damaged ({type(exc).__name__}: {str(exc)[:200]}); rebuild it with tokensweep run --overwrite"
        ) from None
    if not CubeInfo.of(ds).complete:
        from engine.sweep.integrity import mask_unrecorded

        ds = mask_unrecorded(ds, path)
    return ds
