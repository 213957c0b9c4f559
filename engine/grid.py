"""The labelled grid: a sweep spec resolved into a plan of chunked blocks.

:class:`Plan` holds everything one block needs (catalog records, axis vectors, chunk
sizes) and knows each variable's dims. :func:`evaluate_block` runs the kernels on one
block; :meth:`Plan.to_dataset` wires those blocks into a lazy, Dask-backed
:class:`xarray.Dataset` (nothing computes until asked); :meth:`Plan.evaluate_eager`
evaluates the whole grid in one process, the oracle for the Dask path.

Dims of the cube, in order: ``model`` (presets, or presets plus synthetic sizes) or
``params`` (synthetic sizes only), ``isl``, ``osl`` (only when it is an axis),
``concurrency``, ``weight_bits``, ``kv_bits``, ``hardware``, any assumptions made axes,
and ``token_type`` for the by-type cost. Each variable spans only the dims it depends on.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from functools import partial
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from engine import __version__
from engine.assumptions import DESCRIPTIONS, NUMERIC, Assumptions
from engine.catalog import Catalog, Hardware, Model, Workload, load_catalog
from engine.errors import UserError, did_you_mean
from engine.evaluate import evaluate_arrays
from engine.reference import output_length, price_source, synthetic_model, unit_usd_per_hour
from engine.spec import SweepSpec
from engine.units import format_bytes, format_count
from engine.variables import BY_NAME, CONTEXT, TOKEN_TYPE, TOKEN_TYPES, VARIABLES, Variable

#: Points per block aimed at when the spec does not set chunks: ~50 MB of outputs.
TARGET_BLOCK_POINTS = 2**18
COORD_ATTRS = {
    "model": ("", "model (catalog preset or synthetic size)"),
    "params": ("params", "total parameters of the synthetic model"),
    "isl": ("tokens", "average input tokens per turn (cache read + cache write + fresh input)"),
    "osl": ("tokens", "average output tokens per turn"),
    "concurrency": ("requests", "concurrent requests held by one replica"),
    "weight_bits": ("bits", "weight bits per parameter"),
    "kv_bits": ("bits", "KV-cache bits per element"),
    "hardware": ("", "hardware unit (catalog entry)"),
    "token_type": ("", "token type of the workload mix"),
}


@dataclass
class Plan:
    """A resolved sweep: what to compute, in which blocks, with which records."""

    spec: SweepSpec
    catalog: Catalog
    models: list[Model]
    model_dim: str
    hardware: list[Hardware]
    workload: Workload
    assumptions: Assumptions
    axes: dict[str, np.ndarray]  # every grid dim except token_type, in cube order
    param_dims: list[str]
    chunks: dict[str, int]
    variables: list[Variable]
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def fingerprint(self) -> str:
        """What must match for a store to be resumed: the resolved spec and the catalog content."""
        return self.spec.fingerprint({"catalog": self.catalog.fingerprint})

    # ------------------------------------------------------------------ shape
    @property
    def osl_is_axis(self) -> bool:
        return "osl" in self.axes

    @property
    def context_dims(self) -> tuple[str, ...]:
        return ("isl", "osl") if self.osl_is_axis else ("isl",)

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(self.axes)

    @property
    def shape(self) -> dict[str, int]:
        return {d: len(v) for d, v in self.axes.items()}

    @property
    def n_points(self) -> int:
        return math.prod(self.shape.values())

    def var_dims(self, var: Variable) -> tuple[str, ...]:
        """Cube dims of a variable: its kernel dims with context and parameter axes filled in."""
        cache = self.__dict__.setdefault("_dims_cache", {})
        if var.name not in cache:
            cache[var.name] = self._var_dims(var)
        return cache[var.name]

    def _var_dims(self, var: Variable) -> tuple[str, ...]:
        out: list[str] = []
        for d in var.dims:
            if d == "model":
                out.append(self.model_dim)
            elif d == CONTEXT:
                out.extend(self.context_dims)
            elif d == TOKEN_TYPE:
                out.extend(p for p in self.param_dims if self.depends_on_param(var, p))
                out.append(d)
            else:
                out.append(d)
                if d == "hardware" and TOKEN_TYPE not in var.dims:
                    out.extend(p for p in self.param_dims if self.depends_on_param(var, p))
        return tuple(out)

    @staticmethod
    def depends_on_param(var: Variable, param: str) -> bool:
        if var.family == "performance":
            return True
        return param == "usable_memory_fraction" and "hardware" in var.dims

    def var_shape(self, var: Variable) -> tuple[int, ...]:
        return tuple(len(TOKEN_TYPES) if d == TOKEN_TYPE else len(self.axes[d]) for d in self.var_dims(var))

    def var_chunks(self, var: Variable) -> tuple[int, ...]:
        return tuple(len(TOKEN_TYPES) if d == TOKEN_TYPE else self.chunks[d] for d in self.var_dims(var))

    def storage_dtype(self, var: Variable) -> np.dtype:
        if var.dtype == np.float64 and self.spec.precision == "float32":
            return np.dtype(np.float32)
        return np.dtype(var.dtype)

    # ------------------------------------------------------------------ blocks
    @property
    def block_counts(self) -> dict[str, int]:
        return {d: -(-len(v) // self.chunks[d]) for d, v in self.axes.items()}

    @property
    def n_blocks(self) -> int:
        return math.prod(self.block_counts.values())

    def blocks(self) -> Iterator[tuple[int, ...]]:
        """Block indices in C order over the grid dims."""
        return itertools.product(*(range(n) for n in self.block_counts.values()))

    def block_slices(self, block: tuple[int, ...]) -> dict[str, slice]:
        return {
            d: slice(i * self.chunks[d], min((i + 1) * self.chunks[d], len(self.axes[d])))
            for d, i in zip(self.dims, block)
        }

    def block_points(self, block: tuple[int, ...]) -> int:
        return math.prod(s.stop - s.start for s in self.block_slices(block).values())

    def owns(self, block: tuple[int, ...], var: Variable) -> bool:
        """A variable's chunk is written by the one block at index 0 along the dims it lacks."""
        dims = set(self.var_dims(var))
        return all(i == 0 for d, i in zip(self.dims, block) if d not in dims)

    def var_block_index(self, block: tuple[int, ...], var: Variable) -> tuple[int, ...]:
        index = dict(zip(self.dims, block))
        return tuple(0 if d == TOKEN_TYPE else index[d] for d in self.var_dims(var))

    def var_region(self, block: tuple[int, ...], var: Variable) -> tuple[slice, ...]:
        slices = self.block_slices(block)
        return tuple(slice(None) if d == TOKEN_TYPE else slices[d] for d in self.var_dims(var))

    # ------------------------------------------------------------------ sizes
    def bytes_on_disk(self) -> int:
        """Uncompressed bytes of all variables (before Zarr's compression)."""
        return sum(math.prod(self.var_shape(v)) * self.storage_dtype(v).itemsize for v in self.variables)

    def bytes_per_block(self) -> int:
        """Peak bytes one block holds: kernel outputs (float64) for the full block extents."""
        first = tuple(0 for _ in self.dims)
        chunk = {d: s.stop - s.start for d, s in self.block_slices(first).items()}
        total = 0
        for v in VARIABLES:
            dims = self.var_dims(v)
            total += math.prod(len(TOKEN_TYPES) if d == TOKEN_TYPE else chunk[d] for d in dims) * np.dtype(v.dtype).itemsize
        return total

    def __repr__(self) -> str:
        shape = " x ".join(f"{d} {n}" for d, n in self.shape.items())
        return (
            f"<Plan {self.spec.name}: {shape} = {self.n_points:,} points, {len(self.variables)} variables, "
            f"{self.n_blocks:,} blocks of <= {self.bytes_per_block() / 1e6:.1f} MB, "
            f"{format_bytes(self.bytes_on_disk())} uncompressed>"
        )

    # ------------------------------------------------------------------ coordinates and attrs
    def coords(self) -> dict:
        coords: dict = {}
        for d, values in self.axes.items():
            units, long_name = COORD_ATTRS.get(d) or (DESCRIPTIONS[d][0], DESCRIPTIONS[d][1])
            coords[d] = (d, _stable(values), {"units": units, "long_name": long_name})
        coords[TOKEN_TYPE] = (TOKEN_TYPE, _stable(np.array(TOKEN_TYPES)), {"units": "", "long_name": COORD_ATTRS[TOKEN_TYPE][1]})
        md = self.model_dim
        model_fields = {
            "total_params": ("params", "total parameters", [m.total_params for m in self.models]),
            "active_params": ("params", "active parameters per token", [m.active_params for m in self.models]),
            "layers": ("layers", "transformer layers", [m.layers for m in self.models]),
            "experts": ("count", "routed experts (1 = dense)", [m.experts for m in self.models]),
            "experts_per_token": ("count", "routed experts per token", [m.experts_per_token for m in self.models]),
            "hidden_size": ("elements", "hidden size", [m.hidden_size for m in self.models]),
            "query_width": ("elements", "attention query width", [m.query_width for m in self.models]),
            "kv_elements_per_token": (
                "elements", "KV elements per token below every window", [m.kv_elements_per_token_full for m in self.models]
            ),
            "synthetic": ("bool", "synthetic (scaled) model", [m.synthetic for m in self.models]),
            "attention": ("", "attention type", [m.attention for m in self.models]),
        }
        for name, (units, long_name, values) in model_fields.items():
            if name == "total_params" and md == "params":
                continue
            coords[name] = (md, _stable(np.asarray(values)), {"units": units, "long_name": long_name})
        a = self.assumptions
        hw_fields = {
            "kind": ("", "hardware kind", [h.kind for h in self.hardware]),
            "memory_bytes": ("bytes", "memory per unit", [h.memory_gb * 1e9 for h in self.hardware]),
            "memory_bandwidth": ("bytes/s", "memory bandwidth per unit", [h.memory_bw_tbs * 1e12 for h in self.hardware]),
            "bf16_flops": ("FLOP/s", "dense BF16 peak per unit", [h.bf16_tflops * 1e12 for h in self.hardware]),
            "capex_per_unit_usd": ("USD", "capital cost per unit", [h.capex_usd for h in self.hardware]),
            "scaleup_domain": ("units", "scale-up domain size (0 = none)", [h.scaleup_domain or 0 for h in self.hardware]),
            "unit_usd_per_hour": ("USD/h", "hourly rate per unit at the base parameters", [unit_usd_per_hour(h, a) for h in self.hardware]),
            "price_source": ("", "rental rate, or tco where the scenario lists none", [price_source(h, a.price) for h in self.hardware]),
        }
        for name, (units, long_name, values) in hw_fields.items():
            coords[name] = ("hardware", _stable(np.asarray(values)), {"units": units, "long_name": long_name})
        if not self.osl_is_axis:
            coords["osl"] = ("isl", self.derived_osl, {"units": "tokens", "long_name": f"output tokens per turn, derived from the {self.workload.name} mix"})
        return coords

    @functools.cached_property
    def derived_osl(self) -> np.ndarray:
        """OSL per ISL from the workload mix, computed once (every block reads it)."""
        return np.array([output_length(v, self.workload) for v in self.axes["isl"]])

    def attrs(self) -> dict:
        return {
            "title": f"tokensweep cube: {self.spec.name}",
            "engine_version": __version__,
            "catalog_fingerprint": self.catalog.fingerprint,
            "spec": json.dumps(self.spec.canonical(), sort_keys=True),
            "spec_fingerprint": self.fingerprint,
            "created": self.created,
            "assumptions": json.dumps(self.assumptions.model_dump(mode="json"), sort_keys=True),
            "workload": json.dumps(self.workload.model_dump(mode="json"), sort_keys=True),
            "parameter_axes": json.dumps(self.param_dims),
            "conventions": "decimal units (GB = 1e9 bytes); time in s; money in USD; params counted in units",
            "nan_meaning": "cost_per_mtok_by_type_usd is NaN for a token type absent from the workload mix",
            "complete": 0,
        }

    # ------------------------------------------------------------------ evaluation
    def block_assumptions(self, block: tuple[int, ...]) -> Assumptions:
        slices = self.block_slices(block)
        update = {p: float(self.axes[p][slices[p].start]) for p in self.param_dims}
        return self.assumptions.model_copy(update=update) if update else self.assumptions

    def to_dataset(self):
        """The whole cube as a lazy, Dask-backed Dataset (building it computes nothing)."""
        import dask.array as da
        import xarray as xr
        from dask.base import tokenize
        from dask.highlevelgraph import HighLevelGraph

        token = tokenize(self.fingerprint)
        evaluate_name = f"tokensweep-block-{token}"
        # Bind the arguments: Dask would otherwise walk the Plan dataclass and the block tuple.
        layer = {(evaluate_name, *b): (partial(evaluate_block, self, b),) for b in self.blocks()}
        data_vars = {}
        for var in self.variables:
            name = f"{var.name}-{token}"
            var_layer = {}
            for b in self.blocks():
                if self.owns(b, var):
                    var_layer[(name, *self.var_block_index(b, var))] = (partial(_pick, name=var.name), (evaluate_name, *b))
            merged = HighLevelGraph(
                layers={evaluate_name: layer, name: var_layer},
                dependencies={evaluate_name: set(), name: {evaluate_name}},
            )
            chunks = da.core.normalize_chunks(self.var_chunks(var), self.var_shape(var))
            array = da.Array(merged, name, chunks, dtype=self.storage_dtype(var))
            data_vars[var.name] = (self.var_dims(var), array, {"units": var.units, "long_name": var.long_name})
        return xr.Dataset(data_vars, coords=self.coords(), attrs=self.attrs())

    def evaluate_eager(self):
        """The whole cube computed in this process with numpy arrays (the oracle for Dask)."""
        import xarray as xr

        whole = {d: 1 if d in self.param_dims else len(v) for d, v in self.axes.items()}
        eager = dataclasses.replace(self, chunks=whole)
        arrays = {v.name: np.empty(self.var_shape(v), dtype=self.storage_dtype(v)) for v in self.variables}
        for block in eager.blocks():
            result = evaluate_block(eager, block)
            for var in self.variables:
                if eager.owns(block, var):
                    arrays[var.name][eager.var_region(block, var)] = result[var.name]
        data_vars = {
            v.name: (self.var_dims(v), arrays[v.name], {"units": v.units, "long_name": v.long_name}) for v in self.variables
        }
        return xr.Dataset(data_vars, coords=self.coords(), attrs=self.attrs())


def _stable(values: np.ndarray) -> np.ndarray:
    """Strings as variable-length (object) arrays: Zarr v3 has a spec for those, not for fixed UTF-32."""
    return values.astype(object) if values.dtype.kind == "U" else values


def _pick(result: dict, name: str):
    return result[name]


def evaluate_block(plan: Plan, block: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Run the kernels on one block; arrays come back in cube layout for the block's extents.

    Only the families with a variable this block owns are run.
    """
    slices = plan.block_slices(block)
    owned = [v for v in plan.variables if plan.owns(block, v)]
    families = sorted({v.family for v in owned}, key=("memory", "performance").index)
    if not families:
        return {}
    models = plan.models[slices[plan.model_dim]]
    hardware = plan.hardware[slices["hardware"]]
    isl = plan.axes["isl"][slices["isl"]]
    if plan.osl_is_axis:
        osl_axis = plan.axes["osl"][slices["osl"]]
        isl_pairs, osl_pairs = np.repeat(isl, len(osl_axis)), np.tile(osl_axis, len(isl))
    else:
        isl_pairs, osl_pairs = isl, plan.derived_osl[slices["isl"]]
    arrays = evaluate_arrays(
        models, hardware, isl_pairs, osl_pairs,
        plan.axes["concurrency"][slices["concurrency"]],
        plan.axes["weight_bits"][slices["weight_bits"]],
        plan.axes["kv_bits"][slices["kv_bits"]],
        plan.workload, plan.block_assumptions(block), families,
    )  # fmt: skip
    out = {}
    for var in owned:
        array = arrays[var.name]
        dims = plan.var_dims(var)
        shape = tuple(
            len(TOKEN_TYPES) if d == TOKEN_TYPE else (1 if d in plan.param_dims else slices[d].stop - slices[d].start)
            for d in dims
        )
        out[var.name] = array.reshape(shape).astype(plan.storage_dtype(var), copy=False)
    return out


# ---------------------------------------------------------------------- building a plan
def _default_chunks(axes: dict[str, np.ndarray], param_dims: list[str], requested: dict[str, int]) -> dict[str, int]:
    """Whole axes except parameters (1 per block); split the largest axes until a block is small."""
    chunks = {d: (1 if d in param_dims else len(v)) for d, v in axes.items()}
    chunks.update({d: min(size, len(axes[d])) for d, size in requested.items()})
    order = [d for d in ("isl", "osl", "concurrency", "model", "params", "hardware", "kv_bits", "weight_bits") if d in axes]
    while math.prod(chunks.values()) > TARGET_BLOCK_POINTS:
        splittable = [d for d in order if d not in requested and chunks[d] > 1]
        if not splittable:
            break
        d = max(splittable, key=lambda k: chunks[k])
        chunks[d] = -(-chunks[d] // 2)
    return chunks


def make_plan(spec: SweepSpec, catalog: Catalog | None = None) -> Plan:
    """Resolve names against the catalog, expand the axes and choose the chunks."""
    catalog = catalog or load_catalog()
    axis_values = spec.axis_values()
    models = [catalog.model(name) for name in spec.models]
    synthetic: list[Model] = []
    if spec.synthetic is not None:
        reference = catalog.model(spec.synthetic.reference)
        synthetic = [
            synthetic_model(reference, p, spec.synthetic.layer_exponent, spec.synthetic.width_exponent)
            for p in spec.synthetic_params()
        ]
    if models:
        model_dim = "model"
        labels = [m.name for m in models] + [f"{m.name.split('@')[0]}@{format_count(m.total_params)}" for m in synthetic]
        if len(set(labels)) != len(labels):
            raise UserError("synthetic.params: sizes too close to label apart (4 significant digits); use fewer points")
    else:
        model_dim = "params"
        labels = [m.total_params for m in synthetic]
    all_models = models + synthetic
    hardware = [catalog.unit(name) for name in spec.hardware]
    workload = catalog.workload(spec.workload_name)
    axes: dict[str, np.ndarray] = {model_dim: np.asarray(labels)}
    for name in ("isl", "osl"):
        if name in axis_values:
            axes[name] = np.asarray(axis_values[name], dtype=np.float64)
    axes["concurrency"] = np.asarray(axis_values["concurrency"], dtype=np.int64)
    axes["weight_bits"] = np.asarray(axis_values["weight_bits"], dtype=np.float64)
    axes["kv_bits"] = np.asarray(axis_values["kv_bits"], dtype=np.float64)
    axes["hardware"] = np.asarray(spec.hardware)
    param_dims = [p for p in NUMERIC if p in axis_values]
    for p in param_dims:
        axes[p] = np.asarray(axis_values[p], dtype=np.float64)
    for dim in spec.chunks:
        if dim not in axes:
            raise UserError(f"chunks.{dim}: not a dim of this sweep ({did_you_mean(dim, axes)})")
    n_points = math.prod(len(v) for v in axes.values())
    if n_points > spec.max_points:
        raise UserError(
            f"max_points: the grid has {n_points:,} points, above the budget of {spec.max_points:,.0f} "
            "(raise max_points in the spec or --max-points, or shrink an axis)"
        )
    variables = [BY_NAME[n] for n in spec.variables] if spec.variables else list(VARIABLES)
    chunks = _default_chunks(axes, param_dims, spec.chunks)
    for p in param_dims:
        chunks[p] = 1
    return Plan(
        spec=spec, catalog=catalog, models=all_models, model_dim=model_dim, hardware=hardware,
        workload=workload, assumptions=spec.assumptions(), axes=axes, param_dims=param_dims, chunks=chunks,
        variables=variables,
    )  # fmt: skip
