"""Training loops, thin over TRL: supervised fine-tuning, reward models, DPO and RLOO."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ilf.files import atomic_directory, atomic_write_json


def save_trained(trainer: Any, model: Any, tokenizer: Any, out_dir: Path, metrics_file: str, metrics: dict[str, Any],
                 work_dir: Path, merge_lora: bool = False) -> None:
    """Write the trained model, its tokenizer and metrics to ``out_dir`` in one atomic step (on the
    main process only), then drop the trainer's scratch directory and wait for the other ranks.
    With ``merge_lora`` the adapter is kept in ``adapter/`` and merged into the saved weights.

    Every rank must call this: under DeepSpeed ZeRO-3 or FSDP each rank holds only a shard of the
    weights, and gathering them into one state dict is a collective step."""
    state_dict = _gathered_state_dict(trainer)
    if trainer.is_world_process_zero():
        with atomic_directory(out_dir) as tmp:
            if merge_lora:
                model.save_pretrained(str(tmp / "adapter"), state_dict=state_dict)  # peft keeps the adapter's keys
                model = model.merge_and_unload() if state_dict is None else _merged_copy(model, state_dict)
                state_dict = None
            model.save_pretrained(str(tmp), state_dict=state_dict)
            tokenizer.save_pretrained(str(tmp))
            atomic_write_json(tmp / metrics_file, metrics)
        shutil.rmtree(work_dir, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()


def _gathered_state_dict(trainer: Any) -> dict[str, Any] | None:
    """The full state dict when the weights are sharded across ranks (DeepSpeed ZeRO-3, FSDP), as
    ``transformers.Trainer.save_model`` gathers it: complete on rank 0, empty elsewhere. ``None``
    when every rank holds the whole model (one process, DDP, ZeRO-1/2) and it saves itself."""
    accelerator = trainer.accelerator
    if getattr(trainer, "is_fsdp_enabled", False):
        return accelerator.get_state_dict(trainer.model)
    if getattr(trainer, "is_deepspeed_enabled", False) and accelerator.state.deepspeed_plugin.zero_stage == 3:
        # Raises unless the DeepSpeed config gathers 16-bit weights on save
        # (zero3_save_16bit_model: true in experiments/accelerate/deepspeed_zero3.yaml).
        return accelerator.get_state_dict(trainer.deepspeed)
    return None


def _merged_copy(peft_model: Any, state_dict: dict[str, Any]) -> Any:
    """A plain model holding ``state_dict`` (a LoRA model's gathered weights) with the adapter merged.

    The trained model's own modules are shards, so peft cannot merge in place: build the same
    architecture on the meta device, adopt the gathered tensors and merge there (on CPU, rank 0)."""
    import torch
    from peft import get_peft_model

    base = peft_model.get_base_model()
    adapter = peft_model.active_adapter
    with torch.device("meta"):
        fresh = get_peft_model(type(base)(base.config), peft_model.peft_config[adapter], adapter_name=adapter)
    fresh.load_state_dict(state_dict, strict=False, assign=True)
    fresh.get_base_model().tie_weights()  # assigning gave tied weights (embeddings, lm_head) separate tensors
    missing = [name for name, tensor in fresh.state_dict().items() if tensor.is_meta]
    if missing:
        raise RuntimeError(f"gathered state dict lacks {len(missing)} weights of the model, e.g. {missing[:3]}")
    return fresh.merge_and_unload()
