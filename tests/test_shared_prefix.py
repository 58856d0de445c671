"""The shared-prompt sampler gives what plain ``generate`` gives, and falls back where it cannot."""

import pytest
import torch
import transformers

from ilf.config import ModelConfig, SamplingConfig
from ilf.generate import generate_outputs
from ilf.models import load_model, tiny_model
from ilf.shared_prefix import SharedPrefixCache, _active, shared_prefix_attention, shared_prefix_generate, supported
from ilf.tasks.base import TemplateTask

RAW = TemplateTask(stop_at_newline=False, drop_unfinished_sentence=False)
PROMPTS = [
    "Title: short\n\nTL;DR:",
    "Title: a much longer title with many more words in it\n\nText: and a body too, longer still\n\nTL;DR:",
    "x:",
]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])  # llama: grouped-query attention (4 query heads, 2 kv heads)
def test_greedy_tokens_and_scores_equal_plain_generate(arch: str) -> None:
    model, tokenizer = tiny_model(arch, seed=1)
    model.eval()
    tokenizer.padding_side = "left"
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)
    assert batch["attention_mask"].min() == 0  # left padding is part of what is checked
    kwargs = dict(max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id, output_scores=True, return_dict_in_generate=True)
    with torch.no_grad():
        plain = model.generate(
            input_ids=batch["input_ids"].repeat_interleave(3, 0), attention_mask=batch["attention_mask"].repeat_interleave(3, 0), **kwargs
        )
    shared = shared_prefix_generate(model, batch["input_ids"], batch["attention_mask"], 3, **kwargs)
    assert torch.equal(plain.sequences, shared.sequences)
    gap = max(float((a - b).abs().max()) for a, b in zip(plain.scores, shared.scores))
    assert gap < 1e-4, gap
    assert model.config._attn_implementation == "sdpa"  # restored afterwards


def test_attention_matches_full_attention_with_padding_gqa_and_several_queries() -> None:
    """Two prompts (one left-padded), three samples each, two new queries per sample, GQA 4/2."""
    torch.manual_seed(0)
    batch, samples, kv_heads, q_heads, dim, prefix_len, own_len, q_len = 2, 3, 2, 4, 8, 5, 4, 2
    prefix_k, prefix_v = torch.randn(batch, kv_heads, prefix_len, dim), torch.randn(batch, kv_heads, prefix_len, dim)
    own_k, own_v = torch.randn(batch * samples, kv_heads, own_len, dim), torch.randn(batch * samples, kv_heads, own_len, dim)
    query = torch.randn(batch * samples, q_heads, q_len, dim)
    prefix_mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])

    prefix = transformers.DynamicCache()
    prefix.update(prefix_k, prefix_v, 0)
    cache = SharedPrefixCache(prefix, prefix_mask, None)
    module = torch.nn.Module()
    module.layer_idx = 0
    token = _active.set(cache)
    try:
        out, _ = shared_prefix_attention(module, query, own_k, own_v, None, scaling=0.3)
    finally:
        _active.reset(token)

    # Reference: every sample gets its own copy of the prompt; plain masked softmax attention.
    keys = torch.cat([prefix_k.repeat_interleave(samples, 0), own_k], 2).repeat_interleave(q_heads // kv_heads, 1)
    values = torch.cat([prefix_v.repeat_interleave(samples, 0), own_v], 2).repeat_interleave(q_heads // kv_heads, 1)
    allowed = torch.ones(batch * samples, 1, q_len, prefix_len + own_len, dtype=torch.bool)
    allowed[..., :prefix_len] &= prefix_mask.repeat_interleave(samples, 0).bool()[:, None, None, :]
    for i in range(q_len):  # query i sits at own position own_len - q_len + i
        allowed[:, :, i, prefix_len + own_len - q_len + i + 1 :] = False
    scores = (query @ keys.transpose(-1, -2)) * 0.3
    expected = torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1) @ values
    torch.testing.assert_close(out, expected.transpose(1, 2), rtol=1e-5, atol=1e-5)


def test_generate_outputs_uses_the_shared_path_and_stays_seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    import ilf.shared_prefix

    calls = []
    real = ilf.shared_prefix.shared_prefix_generate
    monkeypatch.setattr(ilf.shared_prefix, "shared_prefix_generate", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    lm = load_model(ModelConfig(name_or_path="tiny:llama", seed=2))
    sampling = SamplingConfig(max_new_tokens=8, batch_size=2, max_resamples=0)
    first, stats = generate_outputs(lm, RAW, PROMPTS, 4, sampling, seed=5)
    assert calls == [4, 4]  # two batches of prompts, four samples each
    again, _ = generate_outputs(lm, RAW, PROMPTS, 4, sampling, seed=5)
    plain, _ = generate_outputs(
        lm, RAW, PROMPTS, 4, SamplingConfig(max_new_tokens=8, batch_size=2, max_resamples=0, share_prompt=False), seed=5
    )
    assert first == again and all(len(v) == 4 for v in first.values()) and stats.new_tokens > 0
    assert len({t for texts in first.values() for t in texts}) > 3  # the samples of a prompt differ
    assert set(plain) == set(first) and len(calls) == 4  # share_prompt=False took plain generate


def test_unsupported_models_fall_back_to_plain_generate() -> None:
    t5, _ = tiny_model("t5")
    assert not supported(t5)
    layered, _ = tiny_model("gpt2")
    layered.config.scale_attn_by_inverse_layer_idx = True  # scores scaled per layer inside GPT-2's own attention
    assert not supported(layered)
    lm = load_model(ModelConfig(name_or_path="tiny:t5"))
    outputs, stats = generate_outputs(
        lm, RAW, ["summarize: a b c", "summarize: d"], 3, SamplingConfig(max_new_tokens=4, max_resamples=0), 0
    )
    assert [len(outputs[i]) for i in (0, 1)] == [3, 3] and stats.new_tokens > 0


def test_attention_outside_the_context_is_an_error() -> None:
    module = torch.nn.Module()
    module.layer_idx = 0
    with pytest.raises(RuntimeError, match="outside"):
        shared_prefix_attention(module, torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 2), None)


def test_fused_gelu_while_generating_gives_the_same_logits_and_is_put_back() -> None:
    from transformers.activations import GELUTanh, NewGELUActivation

    from ilf.generate import fused_activations

    model, tokenizer = tiny_model("gpt2", seed=4)
    model.eval()
    ids = tokenizer(PROMPTS[1], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = model(ids).logits
        with fused_activations(model):
            assert all(isinstance(block.mlp.act, GELUTanh) for block in model.transformer.h)
            fused = model(ids).logits
    assert all(isinstance(block.mlp.act, NewGELUActivation) for block in model.transformer.h)
    torch.testing.assert_close(fused, before, rtol=1e-5, atol=1e-5)
