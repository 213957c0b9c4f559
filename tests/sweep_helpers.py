"""Small sweep specs shared by the sweep, store and cluster tests."""

from __future__ import annotations

import copy

import yaml

SMALL = {
    "name": "small",
    "models": ["gpt-oss-120b", "deepseek-v4-pro"],
    "synthetic": {"reference": "deepseek-v3", "params": {"geomspace": ["125B", "4T", 4]}},
    "hardware": ["wse3", "h100-sxm", "b200"],
    "axes": {
        "isl": {"geomspace": ["16k", "10M", 9]},
        "concurrency": [1, 16, 250],
        "weight_bits": [4, 8],
        "kv_bits": [8, 16],
    },
    # Contexts up to 10M tokens: extrapolated past the models' windows, as the calculator does.
    "parameters": {"workload": "agentic-coding", "context_limit": "none"},
    "chunks": {"isl": 2, "model": 3, "concurrency": 2},
}


def small(**changes) -> dict:
    spec = copy.deepcopy(SMALL)
    spec.update(changes)
    return spec


#: The small sweep cut into many blocks (for kill, resume and remote-store tests).
MANY_BLOCKS = small(chunks={"model": 1, "isl": 1, "concurrency": 2})


def write_spec(tmp_path, spec: dict, name: str = "spec.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


def comparable(ds):
    """A cube without its timestamps, for comparing two runs."""
    ds = ds.load(scheduler="threads")  # whatever Client an earlier test left as the default
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in ("created", "completed", "history")}
    return ds
