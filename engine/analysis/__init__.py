"""Decisions from cubes: comparisons, break-even concurrency."""
