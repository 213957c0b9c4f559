"""Conditions on figures (``interactivity_tps >= 50``): one set of comparisons for every user.

A sweep's ``reduce.where`` (validated in :mod:`engine.sweep.spec`, applied per block in
:mod:`engine.sweep.reduce`) and ``tokensweep best`` / :func:`engine.cheapest`
(:mod:`engine.analysis.decisions`) read the same names and apply the same operators, so a
reduction equals the decision on the full cube by construction.

>>> import numpy as np
>>> holds(np.array([10.0, 60.0]), "ge", 50).tolist()
[False, True]
"""

from __future__ import annotations

import operator

#: Comparison names as a spec or an API call writes them, and what they do.
COMPARISONS = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt, "eq": operator.eq}


def holds(values, op: str, bound):
    """Where ``values <op> bound`` (numpy and xarray arrays alike)."""
    return COMPARISONS[op](values, bound)
