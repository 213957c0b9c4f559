"""tokensweep: a JIT-compiled sweep engine for LLM-inference economics.

Import package of the ``tokensweep`` distribution. The public Python API:

- :func:`engine.model.catalog.load_catalog` - models, hardware, workloads
- :class:`engine.model.point.Point` and :func:`engine.model.evaluate.evaluate_point` - one
  grid point, every variable
- :func:`engine.sweep.spec.load_spec`, :func:`engine.sweep.plan.make_plan` and
  :func:`engine.sweep.store.run_sweep` - sweeps to Zarr cubes
- :func:`open_cube` - open a cube as an :class:`xarray.Dataset`

Layout: ``engine.model`` (records, formulas, kernels, array core), ``engine.sweep`` (spec,
plan, cube schema, executors, store, cluster), ``engine.analysis`` (comparisons) and
``engine.interfaces`` (the CLI, text panels, figures); ``engine.axes`` is the axis
registry every layer derives from.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tokensweep")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+source"


def open_cube(path):
    """Open a cube written by ``tokensweep run`` as an :class:`xarray.Dataset` (lazy, Dask-backed)."""
    from engine.sweep.cube import open_cube as _open

    return _open(path)


__all__ = ["__version__", "open_cube"]
