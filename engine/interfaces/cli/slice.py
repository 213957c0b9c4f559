"""``tokensweep slice``: values of one variable at a selection, as text, CSV or JSON."""

from __future__ import annotations

import sys

from engine.errors import UserError, did_you_mean
from engine.escape import csv_frame
from engine.interfaces.cli.common import open_cube_arg
from engine.interfaces.selection import add_nearest_option
from engine.units import units_of


def add_parser(sub) -> None:
    sl = sub.add_parser("slice", help="select values from a cube (exact labels; --nearest to snap numbers)")
    sl.add_argument("cube")
    sl.add_argument(
        "--var", required=True, action="append", help="variable name (repeatable: one column each), e.g. ttft_s"
    )
    sl.add_argument(
        "--sel", action="append", default=[], metavar="DIM=VALUE", help="selection (repeatable), e.g. isl=1M"
    )
    add_nearest_option(sl)
    fmt = sl.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout")
    fmt.add_argument("--json", action="store_true", help="JSON on stdout")


def run(args) -> int:
    from engine.interfaces.selection import parse_selection

    ds = open_cube_arg(args.cube)
    names = list(dict.fromkeys(args.var))
    for name in names:
        if name not in ds.data_vars:
            raise UserError(f"--var: unknown variable '{name}' ({did_you_mean(name, list(ds.data_vars))})")
    chosen = parse_selection(ds, args.sel, args.nearest)
    if len(names) > 1:
        return _several(ds, names, chosen, args)
    args.var = names[0]
    da = ds[args.var]
    chosen = {d: v for d, v in chosen.items() if d in da.dims}
    if chosen:
        da = da.sel(chosen)  # values taken from the axis itself: an exact selection
    # Keep the dims and the value; catalog fields stay in `tokensweep show`.
    da = da.reset_coords(drop=True).load()
    units = units_of(da)
    if da.ndim == 0 and (args.json or args.csv):  # every dim selected: one row of the point and its value
        import pandas as pd

        frame = pd.DataFrame([{**chosen, args.var: da.values.item()}])
        if args.json:
            from engine.interfaces.jsonout import dumps

            print(dumps(provenance(ds, frame, [args.var]).to_dict(orient="records")))
        else:
            csv_frame(frame).to_csv(sys.stdout, index=False)
        return 0
    if args.json or args.csv:
        frame = da.to_dataframe().reset_index()
        for dim, value in reversed(chosen.items()):  # the selected coordinates lead every row
            if dim not in frame.columns:
                frame.insert(0, dim, value)
        if args.json:
            from engine.interfaces.jsonout import dumps

            print(dumps(provenance(ds, frame, [args.var]).to_dict(orient="records")))
        else:
            csv_frame(frame).to_csv(sys.stdout, index=False)
    elif da.ndim == 0:
        where = ", ".join(f"{d}={v:g}" if isinstance(v, float) else f"{d}={v}" for d, v in chosen.items())
        print(f"{args.var} = {da.values.item():.6g} {units} at {where}")
    else:
        frame = da.to_dataframe().reset_index()
        print(f"{args.var} [{units}]")
        print(frame.to_string(index=False))
    return 0


def _several(ds, names: list[str], chosen: dict, args) -> int:
    """Several variables at a selection: one column each, broadcast over their dims, with units."""
    import pandas as pd

    selected = ds[names].reset_coords(drop=True)
    selected = selected.sel({d: v for d, v in chosen.items() if d in selected.dims}).reset_coords(drop=True)
    selected = selected.load()
    if selected.dims:
        frame = selected.to_dataframe().reset_index()
    else:
        frame = pd.DataFrame([{n: selected[n].values.item() for n in names}])
    for dim, value in reversed(chosen.items()):
        if dim not in frame.columns:
            frame.insert(0, dim, value)
    if args.json:
        from engine.interfaces.jsonout import dumps

        print(dumps(provenance(ds, frame, names).to_dict(orient="records")))
    elif args.csv:
        csv_frame(frame).to_csv(sys.stdout, index=False)
    else:
        units = ", ".join(f"{n} [{ds[n].attrs.get('units', '')}]" for n in names)
        print(units)
        print(frame.to_string(index=False))
    return 0


def provenance(ds, frame, names: list[str]):
    """JSON rows that say what produced each number: every variable's units, the OSL and where it
    came from, the units in the replica, the price source per hardware, the profile and price
    scenario (one record stands alone, as a JSON consumer reads it)."""
    import numpy as np
    import xarray as xr

    from engine.sweep.cube import CubeInfo

    frame = frame.copy()
    for name in names:
        frame[f"{name}_units"] = ds[name].attrs.get("units", "")

    def along(coord: str):  # a coordinate's value at each row, from the dims it spans
        da = ds[coord]
        if not set(da.dims) <= set(frame.columns):
            return None
        index = {d: xr.DataArray(np.asarray(frame[d]), dims="row") for d in da.dims}
        return da.reset_coords(drop=True).sel(index).values

    if "osl" in ds.coords and "osl" not in ds.dims and (osl := along("osl")) is not None:
        frame["osl"] = osl
        frame["osl_origin"] = ds["osl"].attrs.get("long_name", "")
    if any("hardware" in ds[n].dims for n in names) and "units_per_replica" in ds and "units_per_replica" not in names:
        units = along("units_per_replica")
        if units is not None:
            frame["units_per_replica"] = units
    if "hardware" in frame.columns and "price_source" in ds.coords:
        frame["price_source"] = along("price_source")
    info = CubeInfo.of(ds)
    frame["profile"] = info.profile or ""
    frame["price"] = info.assumptions.get("price", "")
    frame["cube_complete"] = info.complete  # False: uncomputed points read as missing (NaN)
    return frame
