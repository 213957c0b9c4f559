"""tokensweep: a JIT-compiled sweep engine for LLM-inference economics.

Import package of the ``tokensweep`` distribution. The Python API is a few names:

- :func:`point` - every figure of one configuration (what ``tokensweep point`` prints);
- ``sweep(spec)`` - a sweep spec (a YAML path or a dict) as a lazy, Dask-backed Dataset (the
  :mod:`engine.sweep` package itself, callable);
- :func:`run` - write a sweep as a resumable Zarr cube (what ``tokensweep run`` does);
- :func:`open_cube` - open a cube as an :class:`xarray.Dataset`;
- :func:`best` and :func:`frontier` - the cheapest deployment under constraints and the
  cost-interactivity frontier, on any cube (also ``ds.tokensweep.cheapest/frontier``).

>>> import engine
>>> p = engine.point("gpt-oss-120b", "wse3", isl=96.3e3, concurrency=250, weight_bits=4, kv_bits=16)
>>> p["units_needed"], p["units_per_replica"]
(22, 22)

Layout: ``engine.model`` (records, formulas, kernels, array core), ``engine.sweep`` (spec,
plan, cube schema, blocks, outputs, store, cluster), ``engine.analysis`` (decisions,
calibration) and ``engine.interfaces`` (the CLI, text panels, figures); ``engine.axes`` is
the axis registry every layer derives from.
"""

from engine.version import __version__

__all__ = ["__version__", "best", "cheapest", "frontier", "open_cube", "point", "run", "sweep"]


def point(
    model: str,
    hardware: str = "wse3",
    isl: float = 96.3e3,
    osl: float | None = None,
    concurrency: float = 1,
    weight_bits: float = 16,
    kv_bits: float = 16,
    workload: str = "agentic-coding",
    profile: str = "calibrated",
    catalog=(),
    **assumptions,
) -> dict:
    """Every variable of one configuration, in base units (NaN as None), like ``tokensweep point``.

    ``osl`` defaults to the length the workload mix implies; ``profile`` is the serving
    profile (``calibrated`` by default, ``roofline`` for the bound); any other keyword is an
    assumption (``price="spot"``, ``replica_units=8``, ``wafer_batching="single_stream"``).
    ``catalog``: extra catalog files.
    """
    from engine.model.catalog import load_catalog
    from engine.model.evaluate import evaluate_point
    from engine.model.point import Point

    cat = load_catalog(catalog)
    a = cat.assumptions(profile, assumptions, "")
    record = Point(cat.model(model), cat.get_hardware(hardware), cat.workload(workload), isl, osl, concurrency, weight_bits,
                   kv_bits, a)  # fmt: skip
    return evaluate_point(record)


def run(spec, output=None, overwrite: bool = False, catalog=()):
    """Write (or resume) a sweep's cube or reduction as Zarr v3; returns what was done (``.path``).

    ``output`` defaults to the spec's ``output:`` or ``outputs/<name>.zarr``; threads on this
    machine (for a cluster, ``engine.sweep.store.run_sweep`` takes a profile).
    """
    from engine.sweep import plan_of
    from engine.sweep.store import run_sweep

    return run_sweep(plan_of(spec, catalog), output, overwrite=overwrite)


def open_cube(path):
    """Open a cube written by ``tokensweep run`` as an :class:`xarray.Dataset` (lazy, Dask-backed).

    The ``ds.tokensweep`` accessor (``cheapest``, ``frontier``) is registered on the way.
    """
    import engine.analysis.decisions  # noqa: F401 - registers the accessor
    from engine.sweep.cube import open_cube as _open

    return _open(path)


def best(ds, cost: str = "cost_per_mtok_output_usd", where=None, over=None, by=()):
    """The cheapest configuration per ``by`` group where ``where`` holds (``tokensweep best``).

    >>> import engine
    >>> ds = engine.sweep({"name": "demo", "models": ["llama-3.1-70b"], "hardware": ["h100-sxm", "wse3"],
    ...                    "axes": {"isl": [8000], "concurrency": [1, 8, 64]}})
    >>> won = engine.best(ds, where={"interactivity_tps": {"ge": 100}}, by=["hardware"]).load()
    >>> won["concurrency"].sel(hardware="wse3").item()
    64.0
    """
    from engine.analysis.decisions import cheapest

    return cheapest(ds, cost=cost, where=where, over=over, by=by)


def __getattr__(name):  # engine.sweep, engine.frontier / engine.cheapest without importing xarray at `import engine`
    if name == "sweep":
        import engine.sweep

        return engine.sweep
    if name in ("frontier", "cheapest"):
        from engine.analysis import decisions

        return getattr(decisions, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
