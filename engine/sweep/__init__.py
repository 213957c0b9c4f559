"""Sweeps: spec, plan, cube schema, executors and the Zarr store."""
