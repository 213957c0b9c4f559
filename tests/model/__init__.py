"""Tests of engine.model: formulas, kernels, catalog, registries, physics."""
