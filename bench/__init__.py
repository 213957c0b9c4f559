"""tokensweep benchmarks: `python -m bench [--quick]` (see bench/suite.py)."""
