"""N samples of one prompt with the prompt encoded once and its keys and values shared.

``generate(num_return_sequences=N)`` copies each prompt N times: the prompt (post, summary and
feedback: hundreds of tokens) is encoded N times, and at every new token each of the N copies of its
keys and values is read again. On a CPU that memory traffic, not arithmetic, bounds decoding.

Here the batch's prompts, all but their last token, run through the model once. Decoding then goes
through ``generate`` as usual with a cache that holds the new tokens of the N samples separately and
an attention function that lets the queries of all N samples of a prompt attend to the one copy of
its keys, merging the prompt part and the new-token part of the softmax exactly. The results are the
ones plain ``generate`` gives, up to float rounding (a test compares greedy outputs and
log-probabilities).

Only for decoder-only models whose attention goes through the transformers attention interface and
has no sliding window, logit soft-capping or position bias in the scores; :func:`supported` says
which, and other models use plain ``generate``.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

import torch
from transformers import AttentionInterface, DynamicCache

ATTENTION = "ilf_shared_prefix"

_active: ContextVar[SharedPrefixCache | None] = ContextVar("ilf_shared_prefix_cache", default=None)


class SharedPrefixCache(DynamicCache):
    """New tokens per sample, plus one copy of each prompt's keys and values.

    The new tokens' keys and values go into buffers allocated once for ``capacity`` tokens: growing
    them by concatenation copies the whole cache at every step, which took half of the decoding time
    on a CPU. ``get_seq_length`` counts the prompt too, so ``generate`` places new tokens after it.
    """

    def __init__(self, prefix: DynamicCache, prefix_mask: torch.Tensor, config: Any, capacity: int = 64) -> None:
        super().__init__(config=config)
        self.prefix_keys_t = [layer.keys.transpose(-1, -2).contiguous() for layer in prefix.layers]  # (B, Hkv, d, L): read at every step
        self.prefix_values = [layer.values for layer in prefix.layers]
        # Additive bias that hides the left padding of the prompts: (B, 1, 1, L)
        bias = torch.zeros(prefix_mask.shape, dtype=torch.float32, device=prefix_mask.device)
        self.prefix_bias = bias.masked_fill(~prefix_mask.bool(), float("-inf"))[:, None, None, :]
        self.prefix_length = prefix_mask.shape[1]
        self.capacity = capacity
        self.own: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.own_length: dict[int, int] = {}

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        start = self.own_length.get(layer_idx, 0)
        end = start + key_states.shape[-2]
        keys, values = self.own.get(layer_idx, (None, None))
        if keys is None or end > keys.shape[-2]:
            size = max(end, self.capacity if keys is None else 2 * keys.shape[-2])
            grown_k = key_states.new_empty((*key_states.shape[:2], size, key_states.shape[-1]))
            grown_v = value_states.new_empty((*value_states.shape[:2], size, value_states.shape[-1]))
            if keys is not None:
                grown_k[:, :, :start], grown_v[:, :, :start] = keys[:, :, :start], values[:, :, :start]
            keys, values = grown_k, grown_v
            self.own[layer_idx] = (keys, values)
        keys[:, :, start:end] = key_states
        values[:, :, start:end] = value_states
        self.own_length[layer_idx] = end
        return keys[:, :, :end], values[:, :, :end]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.prefix_length + self.own_length.get(layer_idx, 0)


def shared_prefix_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention of (B*N, Hq, q, d) queries over a (B, Hkv, L, d) shared prompt and (B*N, Hkv, S, d) own tokens.

    The two parts of the softmax are computed apart and merged through their maxima and sums, so
    no score tensor is concatenated or transposed; only (.., d)-sized results change layout.
    """
    cache = _active.get()
    if cache is None:
        raise RuntimeError(f"attention implementation {ATTENTION!r} used outside shared_prefix_generate()")
    layer = module.layer_idx
    prefix_kt, prefix_v = cache.prefix_keys_t[layer], cache.prefix_values[layer]
    batch, kv_heads, dim, prefix_len = prefix_kt.shape
    rows, q_heads, q_len, _ = query.shape
    samples, group = rows // batch, q_heads // kv_heads
    scale = dim**-0.5 if scaling is None else scaling
    width = group * q_len  # query rows that share one kv head

    def to_prompt_layout(x: torch.Tensor) -> torch.Tensor:  # (B*N, Hkv, w, ...) -> (B, Hkv, N*w, ...)
        return (
            x.reshape(batch, samples, kv_heads, width, *x.shape[3:]).transpose(1, 2).reshape(batch, kv_heads, samples * width, *x.shape[3:])
        )

    def to_sample_layout(x: torch.Tensor) -> torch.Tensor:  # the inverse
        return x.reshape(batch, kv_heads, samples, width, *x.shape[3:]).transpose(1, 2).reshape(rows, kv_heads, width, *x.shape[3:])

    q = query.reshape(rows, kv_heads, width, dim)
    # Prompt part: the queries of all N samples of a prompt are rows of one matrix product.
    s_prefix = torch.matmul(to_prompt_layout(q), prefix_kt).float() * scale + cache.prefix_bias
    # Own part: each sample's new tokens, causal within the q_len new queries.
    s_own = torch.matmul(q, key.transpose(-1, -2)).float() * scale
    own_len = key.shape[-2]
    if q_len > 1:
        query_pos = torch.arange(own_len - q_len, own_len, device=query.device).repeat(group)[:, None]
        s_own = s_own.masked_fill(torch.arange(own_len, device=query.device)[None, :] > query_pos, float("-inf"))

    # Softmax over both parts: a shared maximum, then the two sums (the own part always holds the
    # query's own token, so the maximum is finite even for a row whose prompt is all padding).
    top = torch.maximum(s_prefix.amax(-1), to_prompt_layout(s_own.amax(-1)))
    e_prefix = torch.exp(s_prefix - top[..., None])
    e_own = torch.exp(s_own - to_sample_layout(top)[..., None])
    total = to_sample_layout(e_prefix.sum(-1)) + e_own.sum(-1)
    out = to_sample_layout(torch.matmul(e_prefix.to(value.dtype), prefix_v)).float()
    out = (out + torch.matmul(e_own.to(value.dtype), value)) / total[..., None]
    # The interface returns (rows, q_len, heads, dim), like the built-in implementations.
    return out.to(value.dtype).reshape(rows, q_heads, q_len, dim).transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, shared_prefix_attention)


def _base(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def supported(model: Any) -> bool:
    """Whether the model's attention can be replaced by :func:`shared_prefix_attention` exactly."""
    base = _base(model)
    config = base.config
    if getattr(config, "is_encoder_decoder", False) or not getattr(base, "_supports_attention_backend", False):
        return False
    if any(getattr(config, name, None) for name in ("sliding_window", "attn_logit_softcapping", "alibi", "use_alibi")):
        return False
    if getattr(config, "model_type", "") in {"bloom", "mpt", "falcon", "gemma2", "gemma3", "gpt_neo"}:
        return False  # position bias or per-layer attention variants in the scores
    layer_types = getattr(config, "layer_types", None)
    if layer_types and any(kind != "full_attention" for kind in layer_types):
        return False
    if config.model_type == "gpt2" and (config.reorder_and_upcast_attn or config.scale_attn_by_inverse_layer_idx):
        return False
    return True


@contextmanager
def _attention(model: Any, name: str) -> Iterator[None]:
    base = _base(model)
    previous = base.config._attn_implementation
    base.set_attn_implementation(name)
    try:
        yield
    finally:
        base.set_attn_implementation(previous)


@torch.inference_mode()
def shared_prefix_generate(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, samples: int, **generate_kwargs: Any
) -> torch.Tensor:
    """``generate`` of ``samples`` continuations per left-padded prompt, each prompt encoded once.

    Returns (B * samples, prompt_length + new) token ids, rows grouped by prompt, like
    ``num_return_sequences``.
    """
    prefix = DynamicCache(config=_base(model).config)
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    parameters = inspect.signature(_base(model).forward).parameters
    # transformers renamed past_key_values to cache in 5.2x and warns on the old name
    cache_arg = "cache" if "cache" in parameters else "past_key_values"
    # Only the keys and values are wanted: logits for every prompt position would be B x L x vocab floats.
    no_logits = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
    model(
        input_ids=input_ids[:, :-1],
        attention_mask=attention_mask[:, :-1],
        position_ids=positions[:, :-1],
        use_cache=True,
        **{cache_arg: prefix},
        **no_logits,
    )
    capacity = int(generate_kwargs.get("max_new_tokens") or 64) + 1  # the prompt's last token, then the new ones
    cache = SharedPrefixCache(prefix, attention_mask[:, :-1], _base(model).config, capacity)
    token = _active.set(cache)
    try:
        with _attention(model, ATTENTION):
            return model.generate(
                input_ids=input_ids.repeat_interleave(samples, dim=0),
                attention_mask=attention_mask.repeat_interleave(samples, dim=0),
                **{cache_arg: cache},
                **generate_kwargs,
            )
    finally:
        _active.reset(token)


__all__ = ["ATTENTION", "SharedPrefixCache", "shared_prefix_attention", "shared_prefix_generate", "supported"]
