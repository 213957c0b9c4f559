"""Shared fixtures. Kernels are compiled once per session (and cached on disk)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "tokensweep",
    deadline=None,  # the first example may include JIT compilation or a cache load
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=bool(os.environ.get("CI")),
)
settings.load_profile("tokensweep")


@pytest.fixture(scope="session")
def catalog():
    from engine.catalog import load_catalog

    return load_catalog()


@pytest.fixture(scope="session")
def kernels():
    """The compiled kernel module, imported once for the whole session."""
    from engine import kernels as compiled

    return compiled


@pytest.fixture(scope="session")
def agentic(catalog):
    return catalog.workload("agentic-coding")
