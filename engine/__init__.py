"""tokensweep: a JIT-compiled sweep engine for LLM-inference economics.

Import package of the ``tokensweep`` distribution. The public Python API:

- :func:`engine.model.catalog.load_catalog` - models, hardware, workloads
- :class:`engine.model.point.Point` and :func:`engine.model.evaluate.evaluate_point` - one
  grid point, every variable
- :func:`engine.sweep.spec.load_spec`, :func:`engine.sweep.plan.make_plan` and
  :func:`engine.sweep.store.run_sweep` - sweeps to Zarr cubes
- :func:`open_cube` - open a cube as an :class:`xarray.Dataset`
- :func:`frontier`, :func:`cheapest` - the cost-interactivity frontier and the cheapest
  deployment under constraints, on any cube (also ``ds.tokensweep.frontier/cheapest``)

Layout: ``engine.model`` (records, formulas, kernels, array core), ``engine.sweep`` (spec,
plan, cube schema, blocks, outputs, store, cluster), ``engine.analysis`` (comparisons) and
``engine.interfaces`` (the CLI, text panels, figures); ``engine.axes`` is the axis
registry every layer derives from.
"""

from engine.version import __version__


def open_cube(path):
    """Open a cube written by ``tokensweep run`` as an :class:`xarray.Dataset` (lazy, Dask-backed).

    The ``ds.tokensweep`` accessor (``cheapest``, ``frontier``) is registered on the way.
    """
    import engine.analysis.decisions  # noqa: F401 - registers the accessor
    from engine.sweep.cube import open_cube as _open

    return _open(path)


def __getattr__(name):  # engine.frontier / engine.cheapest without importing xarray at `import engine`
    if name in ("frontier", "cheapest"):
        from engine.analysis import decisions

        return getattr(decisions, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


__all__ = ["__version__", "cheapest", "frontier", "open_cube"]
