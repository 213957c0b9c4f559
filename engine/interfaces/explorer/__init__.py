"""The explorer: one self-contained HTML page with the calculator's panels over a cube.

Plotly draws the panels: it is well kept, renders heatmaps, log axes and hover labels in
the browser, and ships its runtime in the Python package (``plotly.offline.get_plotlyjs``)
so the page inlines it and works with no network. The page's own script
(``explorer.js``) only indexes the embedded arrays and wires the controls.

Data travel exactly: every numeric variable as float64 (gzip, then base64; the browser
inflates it with ``DecompressionStream``), so a panel shows the values ``tokensweep
slice`` gives for the same point. A page whose data would exceed a stated size is refused
before anything is built (narrow it with ``--sel`` or ``--vars``).
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
from importlib import resources
from pathlib import Path

import numpy as np

from engine.atomic import atomic_path, check_file_output
from engine.errors import UserError, did_you_mean
from engine.escape import redact, script_json
from engine.interfaces.panels import cube_serving_text
from engine.model.point import CALCULATOR_POINT
from engine.units import format_bytes, units_of
from engine.version import __version__

#: Where the page opens when the cube holds it (else the nearest values).
CALCULATOR_POINT = {k: v for k, v in CALCULATOR_POINT.items() if k != "workload"}
DEFAULT_LIMIT_BYTES = 50e6


def _start(dim: str, values: np.ndarray) -> int:
    """Index the page opens at: the calculator's value (log-nearest for numbers), the median of a
    ``quantile`` dim (a Monte Carlo summary), else the first."""
    if dim == "quantile":
        return int(np.argmin(np.abs(values.astype(float) - 0.5)))
    wanted = CALCULATOR_POINT.get(dim)
    if wanted is None:
        return 0
    if values.dtype.kind in "iuf":
        numbers = values.astype(float)
        if isinstance(wanted, str) or not (numbers > 0).all():
            return 0
        return int(np.argmin(np.abs(np.log(numbers) - math.log(float(wanted)))))
    labels = [str(v) for v in values]
    return labels.index(wanted) if wanted in labels else 0


def _plain(value):
    """A coordinate value as JSON (numbers as float, labels as text)."""
    if isinstance(value, (np.integer, np.floating, int, float)) and not isinstance(value, bool):
        return float(value)
    return str(value)


def select(ds, items: list[str], allow_nearest: bool, variables: list[str] | None):
    """The cube narrowed by ``--sel`` and ``--vars``; returns (dataset, fixed coordinates as text)."""
    from engine.interfaces.selection import parse_selection

    names = list(ds.data_vars)
    if variables:
        for name in variables:
            if name not in names:
                raise UserError(f"--vars: unknown variable '{name}' ({did_you_mean(name, names)})")
        ds = ds[variables]
    chosen = parse_selection(ds, items, allow_nearest)
    if chosen:
        ds = ds.sel(chosen)
    fixed = {d: f"{v:g}" if isinstance(v, float) else str(v) for d, v in chosen.items()}
    return ds, fixed


def data_bytes(ds) -> int:
    """Bytes the page embeds before compression (float64 per value)."""
    return sum(int(np.prod(v.shape, dtype=np.int64)) * 8 for v in ds.data_vars.values())


def check_size(ds, limit: float) -> None:
    size = data_bytes(ds)
    if size > limit:
        dims = sorted(((d, n) for d, n in ds.sizes.items() if d != "token_type"), key=lambda x: -x[1])
        largest = ", ".join(f"{d} {n}" for d, n in dims[:3])
        raise UserError(
            f"explore: the page would embed {format_bytes(size)} of data (limit {format_bytes(limit)}); "
            f"narrow it with --sel DIM=VALUE on a large dim ({largest}) or --vars NAME,..."
        )


def payload(ds, fixed: dict, name: str) -> dict:
    """Everything the page's script reads: dims, variables (offsets into one float64 buffer), provenance."""
    from engine.sweep.cube import CubeInfo

    info = CubeInfo.of(ds)
    dims = list(ds.dims)
    dim_entries = []
    for d in dims:
        values = ds[d].values
        attrs = ds[d].attrs
        dim_entries.append(
            {
                "name": d,
                "values": [_plain(v) for v in values],
                "units": units_of(ds[d]),
                "long_name": str(attrs.get("long_name", d)),
                "numeric": values.dtype.kind in "iuf",
                "start": _start(d, values),
            }
        )
    size_dim = "params" if "params" in dims else ("model" if "model" in dims else None)
    size_labels, size_order = [], []
    if size_dim == "model":
        size_labels = [str(v) for v in ds["model"].values]
        totals = ds["total_params"].values if "total_params" in ds.coords else np.arange(len(size_labels))
        size_order = [int(i) for i in np.argsort(np.asarray(totals, dtype=float), kind="stable")]
    elif size_dim == "params":
        size_labels = [float(v) for v in ds["params"].values]
        size_order = list(range(len(size_labels)))
    chunks, entries, offset = [], [], 0
    for var_name, var in ds.data_vars.items():
        entry = {
            "name": var_name,
            "dims": list(var.dims),
            "shape": list(var.shape),
            "units": units_of(var),
            "long_name": str(var.attrs.get("long_name", var_name)),
        }
        values = var.values
        if values.dtype.kind in "OUST":
            entry["kind"] = "s"
            entry["values"] = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                               for v in values.reshape(-1)]  # fmt: skip
        else:
            entry["kind"] = "f"
            entry["offset"] = offset
            flat = np.ascontiguousarray(values, dtype="<f8").reshape(-1)
            chunks.append(flat)
            offset += flat.size
        entries.append(entry)
    buffer = np.concatenate(chunks) if chunks else np.empty(0, dtype="<f8")
    from engine.sweep.cube import attr_value

    reduction = attr_value(ds.attrs["reduction"]) if "reduction" in ds.attrs else None
    shape = " x ".join(f"{d} {n}" for d, n in ds.sizes.items() if d != "token_type")
    return {
        "title": f"tokensweep explorer: {info.name}",
        "subtitle": (info.spec.get("description") or "")
        + f" ({shape}; {len(entries)} variables). Serving: {cube_serving_text(ds)}",
        "dims": dim_entries,
        "vars": entries,
        "fixed": fixed,
        "size_dim": size_dim,
        "size_labels": size_labels,
        "size_order": size_order,
        "reduced_cost": reduction["min"] if reduction else None,
        "bands": bands(info, ds),
        "provenance": {
            "cube": name,
            "explorer": f"tokensweep {__version__}",
            "engine_version": info.engine_version,
            "catalog_fingerprint": info.catalog_fingerprint,
            "spec_fingerprint": info.spec_fingerprint,
            "created": info.created,
            "complete": info.complete,
            "profile": info.profile,
            "workload": info.workload,
            "assumptions": info.assumptions,
            "reduction": reduction,
            "selection": fixed,
        },
        "data": base64.b64encode(gzip.compress(buffer.tobytes(), compresslevel=6, mtime=0)).decode("ascii"),
    }


def bands(info, ds) -> dict:
    """The factors of each figure's prediction interval (GPU points; engine.analysis.uncertainty)
    from the cube's profile, and which hardware they apply to: the page multiplies them."""
    from engine.analysis.uncertainty import CAPS, MEASURED_KINDS, band_factors

    kinds = [str(k) for k in ds["kind"].values] if "kind" in ds.coords and "hardware" in ds.dims else []
    factors = band_factors(info.spec.get("profile", {}).get("uncertainty", {}))
    if not factors:
        return {}
    return {"level": info.spec["profile"]["uncertainty"]["level"], "factors": factors, "caps": CAPS,
            "applies": [kind in MEASURED_KINDS for kind in kinds]}  # fmt: skip


def render(page_payload: dict) -> str:
    """The page: the template with Plotly's runtime, the payload and the script inlined."""
    from plotly.offline import get_plotlyjs

    folder = resources.files("engine.interfaces.explorer")
    template = (folder / "page.html").read_text(encoding="utf-8")
    script = (folder / "explorer.js").read_text(encoding="utf-8")
    # No credentials (redacted in plain JSON, where "&" between query parameters is still "&"),
    # then nothing in a name can close the element.
    text = script_json(json.loads(redact(json.dumps(page_payload, allow_nan=False, ensure_ascii=False))))
    parts = {
        "__TITLE__": html.escape(redact(page_payload["title"])),
        "__PLOTLY__": get_plotlyjs(),
        "__PAYLOAD__": text,
        "__SCRIPT__": script,
    }
    out, rest = [], template
    while rest:
        at = [(rest.find(k), k) for k in parts if rest.find(k) >= 0]
        if not at:
            out.append(rest)
            break
        index, key = min(at)
        out += [rest[:index], parts[key]]
        rest = rest[index + len(key) :]
    return "".join(out)


def write_page(html: str, output: Path) -> None:
    """Atomically: a crash or a full disk never leaves half a page."""
    with atomic_path(output, ".html") as temporary:
        temporary.write_text(html, encoding="utf-8")


def default_page_path(cube) -> Path:
    from engine.sweep.location import beside

    return beside(cube, "_explorer.html")


def check_page_path(output: Path) -> Path:
    if output.suffix.lower() != ".html":
        raise UserError(f"-o: {output} must end in .html")
    if not output.parent.is_dir():
        raise UserError(f"-o: folder {output.parent} does not exist")
    return output


def explore(cube, output=None, items=(), allow_nearest=False, variables=None, limit=DEFAULT_LIMIT_BYTES) -> Path:
    """Write the explorer page of a cube (or of a selection of it); returns its path."""
    from engine.sweep.cube import open_cube

    output = check_page_path(Path(output) if output else default_page_path(cube))
    check_file_output(output, [cube])
    ds, fixed = select(open_cube(cube), list(items), allow_nearest, variables)
    keep = ("total_params", "kind")  # sizes for the size axis; hardware kinds for the bands
    ds = ds.reset_coords([c for c in ds.coords if c not in ds.dims and c not in keep], drop=True)
    check_size(ds, limit)  # the numbers alone, before anything is loaded
    page = render(payload(ds.load(), fixed, str(cube)))
    size = len(page.encode("utf-8"))  # everything the page carries: labels, runtime, script
    if size > limit:
        raise UserError(
            f"explore: the page would be {format_bytes(size)} (limit {format_bytes(limit)}, Plotly's runtime and "
            "every label included); narrow it with --sel DIM=VALUE or --vars NAME,..., or raise --max-size"
        )
    write_page(page, output)
    return output
