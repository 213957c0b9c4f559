"""tokensweep: a JIT-compiled sweep engine for LLM-inference economics.

Import package of the ``tokensweep`` distribution. The public Python API:

- :func:`engine.catalog.load_catalog` - models, hardware, workloads
- :func:`engine.point.evaluate_point` - one grid point, every variable
- :func:`engine.spec.load_spec` / :func:`engine.store.run_sweep` - sweeps to Zarr cubes
- :func:`open_cube` - open a cube as an :class:`xarray.Dataset`
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tokensweep")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+source"


def open_cube(path):
    """Open a cube written by ``tokensweep run`` as an :class:`xarray.Dataset` (lazy, Dask-backed)."""
    from engine.store import open_cube as _open

    return _open(path)


__all__ = ["__version__", "open_cube"]
