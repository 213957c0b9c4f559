"""The shipped figures read cleanly, and what the README says about them is their data.

Each shipped sweep that draws a figure is run afresh; every text drawn in its figures
(model labels, contour labels, deployment labels, legends) is checked not to overlap
another, and the README's summary of the WSE-3 vs GPU figures is recomputed from the cube.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import xarray as xr

from engine.interfaces.cli import main
from engine.interfaces.figures import advantage, cost, frontier, labels, memory, phase

ROOT = Path(__file__).resolve().parents[2]
MODULES = (advantage, cost, frontier, memory, phase)


@pytest.fixture
def drawn(monkeypatch):
    """Figures as they are saved, by file name (the files are written too)."""
    figures = {}
    for module in MODULES:
        original = module.save

        def capture(fig, output, _original=original, **options):
            figures[Path(output).name] = fig
            _original(fig, output, **options)

        monkeypatch.setattr(module, "save", capture)
    return figures


def run_shipped(name: str, tmp_path: Path) -> Path:
    out = tmp_path / f"{name}.zarr"
    assert main(["run", str(ROOT / "sweeps" / f"{name}.yaml"), "--output", str(out), "--no-progress"]) == 0
    return out


def readme_summary(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- summary: {name} -->\n(.*?)\n<!-- end summary -->", text, re.S)
    assert found, f"README has no summary block for {name}"
    return found.group(1)


@pytest.mark.parametrize("name", ["cerebras_phase", "quantization", "wse_vs_gpu", "wse_vs_gpu_frontier"])
def test_no_text_overlaps_in_the_shipped_figures(name, tmp_path, drawn):
    cube = run_shipped(name, tmp_path)
    if name == "wse_vs_gpu":  # the frontier of the README's example cube, as `plot frontier` draws it
        assert main(["plot", "frontier", str(cube), "-o", str(tmp_path / "frontier.png")]) == 0
    assert drawn, "the sweep drew no figure"
    for file, fig in drawn.items():
        assert labels.collisions(fig) == [], file
        assert [(text, n) for text, n in labels.crossings(fig) if n] == [], f"{file}: a label crossed by a line"


def test_phase_markers_sit_at_exactly_1m_in_the_shipped_sweep(tmp_path):
    ds = xr.open_zarr(run_shipped("cerebras_phase", tmp_path))
    _, markers, _ = phase.phase_data(ds)
    assert markers and {isl for _, isl, _ in markers.values()} == {phase.MARKER_ISL}
    kimi = ds["units_needed"].sel(model="kimi-k2.6", isl=1_000_000, hardware="wse3", concurrency=250)
    assert markers["kimi-k2.6"][2] == int(kimi.sel(weight_bits=4, kv_bits=16))


def test_the_readme_summary_of_the_advantage_figure_is_its_data(tmp_path):
    ds = xr.open_zarr(run_shipped("wse_vs_gpu_frontier", tmp_path))
    assert advantage.describe_advantage(ds) == readme_summary("wse_vs_gpu_frontier")


@pytest.mark.slow
def test_the_readme_summary_of_the_mixed_fleet_is_its_data(tmp_path):
    ds = xr.open_zarr(run_shipped("wse_vs_gpu_mixed", tmp_path))
    assert advantage.describe_advantage(ds) == readme_summary("wse_vs_gpu_mixed")


@pytest.mark.slow
def test_the_readme_summary_of_the_search_figure_is_its_data(tmp_path):
    ds = xr.open_zarr(run_shipped("wse_vs_gpu_search", tmp_path))
    assert advantage.describe_advantage(ds) == readme_summary("wse_vs_gpu_search")


def test_labels_move_off_each_other_and_optional_ones_give_way(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([1, 2], [1, 2], "o")
    ax.set_xlim(0, 3)
    ax.set_ylim(0, 3)
    crowd = [labels.Label(f"required {i}", (1.0, 1.0)) for i in range(4)]
    crowd += [labels.Label("optional", (1.0, 1.0), optional=True) for _ in range(20)]
    texts = labels.place(ax, crowd)
    assert len(texts) < len(crowd)  # some optional labels had no free place
    assert [t.get_text() for t in texts[:4]] == [f"required {i}" for i in range(4)]
    assert labels.collisions(fig) == []
    assert {t.get_position() for t in texts} and len({t.xyann for t in texts}) == len(texts)  # each its own offset
    plt.close(fig)


def test_a_dollar_in_a_name_is_text_not_math(tmp_path):
    from engine.interfaces.figures.common import pyplot

    plt = pyplot()
    fig, ax = plt.subplots()
    ax.set_title("model $x^{ and $5/h")  # unbalanced mathtext would raise when drawn
    fig.savefig(tmp_path / "f.png")
    plt.close(fig)


def test_a_label_moves_off_a_line_through_its_first_place(tmp_path):
    """A vertical line just right of the point crosses the first offset (right, above): the
    label goes left, and `crossings` counts what crosses a text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set(xlim=(0, 10), ylim=(0, 10))
    ax.plot([5.6, 5.6], [0, 10], color="k")  # a line where the first offset would put the label
    ax.plot([0, 10], [2, 2], linestyle="none")  # an invisible line is no obstacle
    (text,) = labels.place(ax, [labels.Label("a long label here", (5.0, 5.0))])
    assert text.get_horizontalalignment() == "right"
    assert labels.crossings(fig) == [("a long label here", 0)]
    blocked = ax.annotate("crossed", (5.0, 7.0), xytext=(8, 0), textcoords="offset points")
    assert dict(labels.crossings(fig))[blocked.get_text()] == 1
    plt.close(fig)
