"""``tokensweep show``: a cube's dims, variables with units, and provenance."""

from __future__ import annotations

from engine.interfaces.cli.common import open_cube_arg
from engine.units import units_of


def add_parser(sub) -> None:
    sub.add_parser("show", help="describe a cube: dims, variables with units, provenance").add_argument("cube")


def run(args) -> int:
    import json

    from engine.sweep.cube import CubeInfo

    ds = open_cube_arg(args.cube)
    info = CubeInfo.of(ds)
    state = "complete" if info.complete else "INCOMPLETE (run the sweep again to resume)"
    print(f"cube {args.cube}: sweep '{info.name}', {state}")
    print(
        f"  engine {info.engine_version}, catalog {info.catalog_fingerprint}, "
        f"spec {info.spec_fingerprint}, created {info.created}"
    )
    print("dims:")
    for dim, size in ds.sizes.items():
        values = ds[dim].values
        units = units_of(ds[dim])
        span = f"{values[0]} .. {values[-1]}" if size > 1 else f"{values[0]}"
        print(f"  {dim:<22} {size:>6}  {span} {units}".rstrip())
    print("variables:")
    for name, var in ds.data_vars.items():
        print(f"  {name:<28} [{units_of(var)}] ({', '.join(var.dims)})  {var.attrs.get('long_name', '')}")
    uncertain = info.uncertain
    drawn = set(uncertain.names) if uncertain is not None else set()
    fixed = {k: v for k, v in info.assumptions.items() if k not in ds.dims and k not in drawn}
    print("fixed assumptions:", json.dumps(fixed, sort_keys=True))
    if uncertain is not None:
        print(
            f"drawn: {uncertain.describe()}; variables no draw moves have no {'draw' if uncertain.quantiles is None else 'quantile'} dim"
        )
    swept = [k for k in info.assumptions if k in ds.dims]
    if swept:  # an assumption made an axis takes the values of its dim, not the base value recorded
        print(f"assumptions swept as axes (their values are the dims above): {', '.join(swept)}")
    return 0
