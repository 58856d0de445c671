"""Load policies, refiners and judges: any hub id or local path, or a tiny random model.

``tiny:gpt2``, ``tiny:llama`` and ``tiny:t5`` build a model of well under a million parameters
from a config, with a byte-level BPE tokenizer trained on a text shipped in the package, so tests
and the offline run need no download.

``shape:qwen2.5-0.5b`` (``-1.5b``, ``-7b``) builds a model with the architecture of the named
model (layers, widths, attention heads, the full vocabulary) and random weights, with a tokenizer
trained on the same shipped text: a run at a real model's memory and compute shape, offline, to
rehearse a study before it goes to a GPU machine.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ilf import reads
from ilf.config import ModelConfig
from ilf.errors import ModelLoadError

log = logging.getLogger(__name__)

TINY_PREFIX = "tiny:"
TINY_ARCHS = ("gpt2", "llama", "t5")
SHAPE_PREFIX = "shape:"
# The published architectures (the models' config.json on the hub); weights are never needed.
_QWEN2 = dict(hidden_act="silu", max_position_embeddings=32768, rope_theta=1_000_000.0, rms_norm_eps=1e-6, use_sliding_window=False)
SHAPES: dict[str, dict[str, Any]] = {
    "qwen2.5-0.5b": dict(
        _QWEN2, vocab_size=151_936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True,
    ),
    "qwen2.5-1.5b": dict(
        _QWEN2, vocab_size=151_936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
        num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True,
    ),
    "qwen2.5-7b": dict(
        _QWEN2, vocab_size=152_064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
        num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False,
    ),
}  # fmt: skip
_LOAD_HINT = f"give the path of a local model folder, or {TINY_PREFIX}gpt2 for a small random model"


def built_from_config(name: str) -> bool:
    """Whether ``name`` is a model ilf builds from a config (``tiny:*``, ``shape:*``), not a checkpoint."""
    return name.startswith((TINY_PREFIX, SHAPE_PREFIX))


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    is_seq2seq: bool
    device: torch.device
    name: str


def resolve_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        if torch.cuda.is_available():
            # Under a multi-process launcher (accelerate launch, torchrun) each rank owns one GPU;
            # a bare "cuda" would put every rank's copy on GPU 0 before the trainer sets the device.
            local_rank = os.environ.get("LOCAL_RANK")
            return torch.device("cuda", int(local_rank)) if local_rank is not None else torch.device("cuda")
        return torch.device("cpu")
    return torch.device(spec)


def _launched_ranks() -> int:
    """How many processes a launcher (accelerate launch, torchrun) started; 1 when run directly."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def resolve_dtype(spec: str, device: torch.device, for_training: bool = False) -> torch.dtype:
    """The weights' dtype. ``auto`` is bfloat16 on a GPU that has it, and for generation and scoring
    on a CPU that computes it faster than float32 (measured once per machine, ``ilf.precision``);
    training on a CPU stays in float32 (why: ``ilf.precision``)."""
    if spec == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if device.type == "cpu" and not for_training:
            from ilf.precision import cpu_prefers_bfloat16

            return torch.bfloat16 if cpu_prefers_bfloat16() else torch.float32
        return torch.float32
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if spec not in dtypes:
        raise ValueError(f"dtype: expected auto, float32, bfloat16 or float16, got {spec!r}")
    return dtypes[spec]


def dtype_probe(spec: str, device: str, for_training: bool) -> str:
    """What ``dtype: spec`` becomes on ``device`` here (``ilf.reads`` records it)."""
    return str(resolve_dtype(spec, torch.device(device), for_training)).removeprefix("torch.")


def device_probe(spec: str) -> str:
    return str(resolve_device(spec))


def eager_attention_for_cpu_autocast(model: Any) -> None:
    """Switch a model trained under CPU bfloat16 autocast from SDPA to eager attention: the CPU's
    fused attention ran its bfloat16 backward pass 4.9x slower than float32's, while eager
    attention's matmuls gain like every other (measured on the demo's world model)."""
    current = getattr(model.config, "_attn_implementation", None)
    if current == "sdpa" and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")


@lru_cache(maxsize=1)
def _tiny_tokenizer_json() -> str:
    """Train the tiny byte-level BPE once per process (deterministic: same corpus, same vocab)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = resources.files("ilf.assets").joinpath("tiny_tokenizer_corpus.txt").read_text(encoding="utf-8")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=768,
        special_tokens=["<pad>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus.splitlines(), trainer=trainer)
    return tokenizer.to_str()


def tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tiny_tokenizer_json()),
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<pad>",
        model_max_length=1024,
    )


def tiny_model(arch: str, seed: int = 0) -> tuple[Any, Any]:
    """A randomly initialised tiny model and its tokenizer; equal seeds give equal weights."""
    import transformers

    if arch not in TINY_ARCHS:
        raise ValueError(f"unknown tiny model {TINY_PREFIX}{arch} (choose from {', '.join(TINY_PREFIX + a for a in TINY_ARCHS)})")
    tokenizer = tiny_tokenizer()
    ids = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    if arch == "gpt2":
        config = transformers.GPT2Config(n_positions=1024, n_embd=128, n_layer=2, n_head=4, bos_token_id=tokenizer.bos_token_id, **ids)
        model_cls = transformers.GPT2LMHeadModel
    elif arch == "llama":
        config = transformers.LlamaConfig(
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            bos_token_id=tokenizer.bos_token_id,
            **ids,
        )
        model_cls = transformers.LlamaForCausalLM
    else:
        config = transformers.T5Config(
            d_model=128,
            d_ff=256,
            d_kv=32,
            num_layers=2,
            num_decoder_layers=2,
            num_heads=4,
            decoder_start_token_id=tokenizer.pad_token_id,
            **ids,
        )
        model_cls = transformers.T5ForConditionalGeneration
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer


def shape_config(shape: str) -> tuple[Any, Any]:
    """The transformers config of ``SHAPES[name]`` and the tokenizer its models use; ``shape`` is
    ``name`` or ``name,key=value,...`` with integer settings changed (``num_hidden_layers=2``,
    ``vocab_size=32000``), to see how a stage's memory grows with one of them."""
    import transformers

    name, *changes = shape.split(",")
    if name not in SHAPES:
        raise ValueError(f"unknown model shape {SHAPE_PREFIX}{name} (choose from {', '.join(SHAPE_PREFIX + s for s in SHAPES)})")
    settings = dict(SHAPES[name])
    for change in changes:
        key, _, value = change.partition("=")
        if key not in settings or not value.isdigit():
            raise ValueError(f"{SHAPE_PREFIX}{shape}: {change!r} is not KEY=INTEGER with KEY one of {', '.join(sorted(settings))}")
        settings[key] = int(value)
    tokenizer = tiny_tokenizer()
    ids = dict(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    return transformers.Qwen2Config(**settings, **ids), tokenizer


def shape_model(shape: str, seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """A model with the architecture ``SHAPES[shape]`` and random weights, and a tokenizer trained
    on the shipped text; the model keeps the architecture's full vocabulary (its logits are as wide
    as the real model's), of which the tokenizer uses the first few hundred ids."""
    import transformers

    config, tokenizer = shape_config(shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.Qwen2ForCausalLM._from_config(config, dtype=dtype)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    # Random weights would sample ids the tokenizer has no text for; generation keeps to its ids.
    model.generation_config.suppress_tokens = list(range(len(tokenizer), config.vocab_size))
    return model, tokenizer


def config_model(name: str, seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """The model and tokenizer of a ``tiny:*`` or ``shape:*`` name."""
    if name.startswith(SHAPE_PREFIX):
        return shape_model(name[len(SHAPE_PREFIX) :], seed, dtype)
    model, tokenizer = tiny_model(name[len(TINY_PREFIX) :], seed)
    return model.to(dtype), tokenizer


def _is_encoder_decoder(name_or_path: str, trust_remote_code: bool) -> bool:
    from transformers import AutoConfig

    return bool(getattr(AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code), "is_encoder_decoder", False))


def _looks_like_path(name: str) -> bool:
    # A hub id is "name" or "owner/name" and cannot start with "." or "~"; anything else can only
    # have been meant as a folder on disk.
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def _load_error(name: str, field: str, err: OSError) -> ModelLoadError:
    """A one-line error for a model transformers could not load, in place of its multi-line one."""
    from huggingface_hub import constants

    local = Path(name).expanduser()
    if not local.exists() and not _looks_like_path(name) and getattr(constants, "HF_HUB_OFFLINE", False):
        reason = "no such local folder, and the Hugging Face hub is offline (HF_HUB_OFFLINE=1) with no cached copy"
    else:
        lines = str(err).strip().splitlines()
        reason = lines[0] if lines else type(err).__name__
    return ModelLoadError(f"{field}: cannot load model {name!r}: {reason}; {_LOAD_HINT}")


def load_model(config: ModelConfig, for_training: bool = False, *, field: str = "name_or_path") -> LoadedModel:
    """Load model and tokenizer on the configured device and dtype, in eval mode unless training.

    ``field`` is the config key the model name came from (e.g. ``policy.name_or_path``); a model
    that cannot be loaded raises ModelLoadError naming it.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device, for_training)
    name = config.name_or_path
    if reads.active():  # what auto became, and the files behind a local name, are what the stage read
        reads.note("probe", ["device", config.device], str(device))
        reads.note("probe", ["dtype", config.dtype, str(device), for_training], str(dtype).removeprefix("torch."))
        if for_training:
            reads.note("probe", ["world_size"], _launched_ranks())
        for local in (name, config.adapter):
            if local and not built_from_config(local) and Path(local).expanduser().exists():
                reads.note_file(local)
    if built_from_config(name):
        model, tokenizer = config_model(name, config.seed, dtype)
    else:
        local = Path(name).expanduser()
        if not local.exists() and _looks_like_path(name):
            # Checked here because transformers would take the path for a hub id and complain
            # about its characters, which hides that the folder is simply missing.
            expanded = f" ({local})" if name.startswith("~") else ""
            raise ModelLoadError(f"{field}: cannot load model {name!r}: path does not exist{expanded}; {_LOAD_HINT}")
        # transformers does not expand "~"; a folder that exists after expansion is what was meant.
        source = str(local) if name.startswith("~") else name
        if config.kind not in ("auto", "causal", "seq2seq"):
            raise ValueError(f"kind: expected auto, causal or seq2seq, got {config.kind!r}")
        try:
            if config.kind == "auto":
                seq2seq = _is_encoder_decoder(source, config.trust_remote_code)
            else:
                seq2seq = config.kind == "seq2seq"
            model_cls = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
            model = model_cls.from_pretrained(source, dtype=dtype, trust_remote_code=config.trust_remote_code)
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=config.trust_remote_code)
        except OSError as err:
            raise _load_error(name, field, err) from err
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    if tokenizer.pad_token is None:
        # Decoder-only checkpoints often ship without a pad token; eos is the usual stand-in.
        tokenizer.pad_token = tokenizer.eos_token
    if not seq2seq:
        tokenizer.padding_side = "left"  # generation continues from the right edge of every row
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if config.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, config.adapter, is_trainable=for_training)
    if not (for_training and _launched_ranks() > 1):
        # Several ranks training: the trainer places the model (DDP) or its shards (DeepSpeed,
        # FSDP) on each rank's GPU, so a model too big for one GPU is never put whole on one.
        model.to(device)
    model.train(for_training)
    log.info("loaded %s (%s, %s, %s)", name, "seq2seq" if seq2seq else "causal", dtype, device)
    return LoadedModel(model=model, tokenizer=tokenizer, is_seq2seq=seq2seq, device=device, name=name)


def save_model(model: Any, tokenizer: Any, path: str | Path) -> None:
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
