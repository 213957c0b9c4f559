"""Smoke test: every benchmark runs once on a tiny grid (no timing assertions)."""

from __future__ import annotations

import json


def test_every_benchmark_runs_and_reports_its_ratios(tmp_path):
    from bench.suite import run_all

    results = run_all("tiny", tmp_path, include_e2e=True, log=lambda m: None)
    saved = json.loads((tmp_path / "results.json").read_text())
    for key in (
        "kernel_vs_numpy",
        "kernel_vs_python",
        "bandwidth_fraction",
        "end_to_end_vs_kernel",
        "machine",
        "reduction",
    ):
        assert key in saved
    assert "vs_llm_analysis" in saved  # None when llm-analysis is not installed
    assert results["kernels"]["all"]["compiled_points_per_s"] > 0
    assert results["end_to_end"]["threads_2"]["points"] == 2 * 4 * 2 * 3 * 2 * 4
    assert "kernel_vs_numpy" in (tmp_path / "results.md").read_text()
    reduction = saved["reduction"]
    assert reduction["points"] == 4 * 4 * 4 * 3 * 2 * 6 * 2
    assert reduction["output_cells"] == 4 * 4 * 6
    assert reduction["points_per_s"] > 0 and reduction["kernel_only_points_per_s"] > 0


def test_the_scaling_table_runs_for_several_worker_counts(tmp_path):
    from bench.scaling import run_scaling, scaling_markdown

    result = run_scaling([1, 2], "tiny", tmp_path, log=lambda m: None)
    rows = result["workers"]
    assert set(rows) == {1, 2} and result["disk_bytes_per_s"] > 0
    for row in rows.values():
        assert row["end_to_end_points_per_s"] > 0 and row["kernel_only_points_per_s"] > 0
        assert row["write_ceiling_points_per_s"] > 0
    assert rows[1]["end_to_end_efficiency"] == 1.0
    assert "| threads x2 |" in scaling_markdown(result)
