"""The catalog loads every reference entry with the KV layout its architecture implies."""

from __future__ import annotations

import pytest

from engine.errors import UserError
from engine.model.catalog import load_catalog

# Malformed entries live in the bad-input corpus (tests/data/bad/catalogs, tests/e2e/test_bad_inputs.py).

REFERENCE_MODELS = {
    "gpt-oss-120b",
    "gpt-oss-20b",
    "deepseek-v3",
    "deepseek-v3.2",
    "deepseek-v4-pro",
    "deepseek-v4-flash",
    "kimi-k2",
    "kimi-k2.6",
    "glm-4.7",
    "glm-5",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "qwen3-32b",
    "qwen3-235b-a22b",
    "qwen3-coder-480b-a35b",
    "gemma-3-27b",
    "mistral-large-2",
}
REFERENCE_HARDWARE = {"wse3", "h100-sxm", "h200-sxm", "b200", "gb200", "b300", "mi300x", "mi355x", "groq-lpu"}


def test_every_reference_entry_is_in_the_catalog(catalog):
    assert set(catalog.models) == REFERENCE_MODELS
    assert set(catalog.hardware) == REFERENCE_HARDWARE
    assert {"agentic-coding", "chat", "long-document-batch"} <= set(catalog.workloads)


def kv_bytes_per_token_at_16_bits(model, context):
    from engine.model.reference import kv_bytes_per_request

    return kv_bytes_per_request(model, context, 16) / context


@pytest.mark.parametrize(
    "name, layers, elements_per_layer",
    [
        ("qwen3-32b", 64, 2 * 8 * 128),  # head_dim 128 from the config, not hidden/heads = 80
        ("llama-3.1-70b", 80, 2 * 8 * 128),
        ("glm-4.7", 92, 2 * 8 * 128),
        ("deepseek-v3", 61, 512 + 64),  # MLA latent + rope key, shared by K and V
        ("kimi-k2.6", 61, 512 + 64),  # inherited from kimi-k2
        ("deepseek-v3.2", 61, 512 + 64 + 128),  # plus the indexer key
        ("glm-5", 78, 512 + 64 + 128),
    ],
)
def test_full_attention_kv_per_token(catalog, name, layers, elements_per_layer):
    model = catalog.model(name)
    assert kv_bytes_per_token_at_16_bits(model, 10_000) == layers * elements_per_layer * 2


def test_qwen3_32b_head_dim_mistake_would_undercount_by_37_5_percent(catalog):
    model = catalog.model("qwen3-32b")
    wrong = 64 * 2 * 8 * (5120 // 64) * 2
    assert 1 - wrong / kv_bytes_per_token_at_16_bits(model, 1000) == pytest.approx(0.375)


def test_sliding_window_layers_stop_growing_past_the_window(catalog):
    model = catalog.model("gpt-oss-120b")
    # 18 full layers grow with context; 18 sliding layers hold at most 128 tokens.
    per_layer = 2 * 8 * 64 * 2
    from engine.model.reference import kv_bytes_per_request

    assert kv_bytes_per_request(model, 100, 16) == 36 * per_layer * 100
    assert kv_bytes_per_request(model, 10_000, 16) == 18 * per_layer * 10_000 + 18 * per_layer * 128
    gemma = catalog.model("gemma-3-27b")
    assert kv_bytes_per_request(gemma, 50_000, 16) == (10 * 50_000 + 52 * 1024) * 2 * 16 * 128 * 2


def test_deepseek_v4_compressed_groups(catalog):
    from engine.model.reference import kv_elements_per_request

    model = catalog.model("deepseek-v4-pro")
    c = 1_048_576
    expected = 30 * 640 * c / 4 + 31 * 512 * c / 128 + 61 * 512 * 128
    assert kv_elements_per_request(model, c) == pytest.approx(expected, rel=1e-15)


def test_inherited_entries_keep_the_parent_geometry(catalog):
    assert catalog.model("kimi-k2.6").total_params == catalog.model("kimi-k2").total_params
    assert catalog.model("kimi-k2.6").max_context == 262144
    assert catalog.model("deepseek-v3.2").interactivity_tps == {}


def test_fingerprint_is_stable_and_content_sensitive(catalog, tmp_path):
    assert load_catalog().fingerprint == catalog.fingerprint
    extra = tmp_path / "mine.yaml"
    extra.write_text(
        "hardware:\n  h100-sxm: {kind: gpu, memory_gb: 80, memory_bw_tbs: 3.0, bf16_tflops: 989, power_kw: 0.7, capex_usd: 25000}\n"
    )
    mine = load_catalog([extra])
    assert mine.fingerprint != catalog.fingerprint
    assert mine.get_hardware("h100-sxm").memory_bw_tbs == 3.0


def test_unknown_names_suggest_the_closest(catalog):
    with pytest.raises(UserError, match="did you mean 'h100-sxm'"):
        catalog.get_hardware("h100")
