"""Sweeps: spec, plan, cube schema, blocks, outputs and the Zarr store."""
