"""Peak memory per stage, and models built at a real model's shape."""

from __future__ import annotations

import pytest
import torch

from ilf.config import ModelConfig
from ilf.memory import StagePeak, describe
from ilf.models import SHAPES, load_model, shape_config


def _touch(mib: int) -> bytearray:
    block = bytearray(mib * 2**20)
    block[::4096] = b"x" * len(block[::4096])  # resident, not just reserved
    return block


def test_a_stage_peak_is_its_own_not_the_largest_before_it() -> None:
    earlier = _touch(400)
    del earlier
    before = StagePeak().result()  # not started: the process's peak so far, the 400 MiB included
    peak = StagePeak().start()
    block = _touch(40)
    result = peak.result()
    del block
    assert result["rss_scope"] == "stage"  # Linux: the high-water mark was reset at the start
    assert result["rss_mib"] + 300 < before["rss_mib"]
    assert describe(result).startswith("peak RSS ") and "(process)" not in describe(result)


def test_shapes_have_the_published_architecture() -> None:
    import transformers

    config, tokenizer = shape_config("qwen2.5-0.5b")
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.num_key_value_heads) == (24, 896, 14, 2)
    assert config.vocab_size == 151_936 > len(tokenizer)
    with torch.device("meta"):  # no memory: only the parameter count
        model = transformers.Qwen2ForCausalLM(config)
    assert sum(p.numel() for p in model.parameters()) == 494_032_768  # Qwen2.5-0.5B's 0.49B
    assert set(SHAPES) == {"qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-7b"}
    with pytest.raises(ValueError, match="KEY=INTEGER"):
        shape_config("qwen2.5-0.5b,heads=2")
    with pytest.raises(ValueError, match="unknown model shape"):
        shape_config("qwen3-0.6b")


def test_a_shape_with_settings_changed_loads_and_writes_only_text_its_tokenizer_has() -> None:
    small = "shape:qwen2.5-0.5b,num_hidden_layers=1,hidden_size=64,intermediate_size=128,num_attention_heads=4,vocab_size=8192"
    lm = load_model(ModelConfig(name_or_path=small, dtype="bfloat16"))
    assert lm.model.config.vocab_size == 8192 and lm.model.dtype == torch.bfloat16
    prompt = lm.tokenizer(["Title: a post\n\nTL;DR:"], return_tensors="pt")
    with torch.no_grad():
        out = lm.model.generate(**prompt, max_new_tokens=12, do_sample=True, top_k=0, generation_config=lm.model.generation_config)
    new = out[0, prompt["input_ids"].shape[1] :]
    # random weights put almost all mass on ids past the tokenizer's; generation keeps to its ids
    assert len(new) == 12 and int(new.max()) < len(lm.tokenizer)
