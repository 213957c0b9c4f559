"""Smoke test: every benchmark runs once on a tiny grid, as a user runs it (no timing assertions).

The benchmarks live outside the package (``bench/``), so the test runs ``python -m bench`` in a
subprocess and reads what it writes rather than importing it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def bench(*args: str, output: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--output-dir", str(output), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_every_benchmark_runs_and_reports_its_ratios(tmp_path):
    printed = bench(output=tmp_path)
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
    assert saved["kernels"]["all"]["compiled_points_per_s"] > 0
    assert saved["end_to_end"]["threads_2"]["points"] == 2 * 4 * 2 * 3 * 2 * 4
    table = (tmp_path / "results.md").read_text()
    assert "kernel_vs_numpy" in table and printed.strip() == table.strip()  # printed as written
    reduction = saved["reduction"]
    assert reduction["points"] == 4 * 4 * 4 * 3 * 2 * 6 * 2
    assert reduction["output_cells"] == 4 * 4 * 6
    assert reduction["points_per_s"] > 0 and reduction["kernel_only_points_per_s"] > 0
    draws = saved["draws"]  # the cost of uncertainty: with and without draws, in the same run
    assert draws["draws"] == 4 and draws["kernel_draw_points_per_s"] > 0 and draws["block_drawn_points_per_s"] > 0
    assert "**draws**" in table


def test_the_scaling_table_runs_for_several_worker_counts(tmp_path):
    printed = bench("--scaling", "1,2", output=tmp_path)
    result = json.loads((tmp_path / "scaling.json").read_text())
    rows = result["workers"]
    assert set(rows) == {"1", "2"} and result["disk_bytes_per_s"] > 0
    for row in rows.values():
        assert row["end_to_end_points_per_s"] > 0 and row["kernel_only_points_per_s"] > 0
        assert row["write_ceiling_points_per_s"] > 0
    assert rows["1"]["end_to_end_efficiency"] == 1.0
    assert "| threads x2 |" in printed


def test_the_search_benchmark_reports_its_figures(tmp_path):
    printed = bench("--search", output=tmp_path)
    result = json.loads((tmp_path / "search.json").read_text())
    for workers in ("workers_1", "workers_2"):
        row = result[workers]
        assert row["points"] == 4 * 4 * 4 * 3 * 2 * 6 * 2 * 2
        assert row["points_per_s"] > 0 and row["kernel_only_points_per_s"] > 0
        assert row["unfused_kernel_only_points_per_s"] > 0
    assert result["parallel_efficiency"] > 0 and result["plan_estimate_s"] > 0
    assert result["draws"]["kernel_seconds_per_draw"] > 0
    assert "parallel efficiency" in printed and printed.strip() == (tmp_path / "search.md").read_text().strip()


@pytest.mark.parametrize(
    "update",
    [{"wafer_batching": "single_stream"}, {"ttft_scheduler_factor": 3.0}, {"wafer_batching": "calculator"}],
)
def test_the_numpy_baseline_computes_the_kernels_model_off_the_defaults(update):
    """A speed baseline of other work would be no baseline: it equals the kernels (rtol 1e-9)
    with a wafer served one request at a time and with a framework's scheduler hold too."""
    from bench.suite import KernelThroughput  # imported: the check is a comparison, not a timing
    from engine.model.assumptions import Assumptions

    throughput = KernelThroughput("tiny")
    throughput.grid.assumptions = Assumptions(**update)
    throughput.check()
