"""Sweeps: spec, plan, cube schema, blocks, outputs and the Zarr store.

The package is also the Python API's ``engine.sweep(spec)``: calling it turns a sweep spec
(a YAML path, a dict or a SweepSpec) into a lazy, Dask-backed :class:`xarray.Dataset`
(the module's class is made callable, so ``engine.sweep.spec`` and friends stay importable).

>>> import engine
>>> ds = engine.sweep({"name": "demo", "models": ["llama-3.1-70b"], "hardware": ["h100-sxm", "wse3"],
...                    "axes": {"isl": [8000], "concurrency": [1, 64]}})
>>> ds["units_needed"].sel(hardware="wse3").values.ravel().tolist()
[4, 8]
"""

from __future__ import annotations

import sys
import types


def plan_of(spec, catalog=()):
    """The plan of a spec given as a YAML path, a dict or a SweepSpec (against the catalog plus ``catalog`` files)."""
    from engine.model.catalog import load_catalog
    from engine.sweep.plan import make_plan
    from engine.sweep.spec import SweepSpec, load_spec, parse_spec

    if isinstance(spec, dict):
        spec = parse_spec(spec)
    elif not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    return make_plan(spec, load_catalog(catalog))


def lazy(spec, catalog=()):
    """A sweep as a lazy Dataset: nothing is computed until asked (``.sel(...).compute()``).

    A spec with a ``reduce:`` section is evaluated by ``engine.run`` (it writes only the winners).
    """
    from engine.errors import UserError
    from engine.sweep.blocks import to_dataset

    plan = plan_of(spec, catalog)
    if plan.spec.reduction is not None:
        raise UserError("reduce: a reduction is evaluated by engine.run (it writes only the winners)")
    return to_dataset(plan)


class _CallablePackage(types.ModuleType):
    def __call__(self, spec, catalog=()):
        return lazy(spec, catalog)


sys.modules[__name__].__class__ = _CallablePackage
