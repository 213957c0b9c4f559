"""The cost model: records, formulas, kernels and the array core."""
