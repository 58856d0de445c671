"""Training loops, thin over TRL: supervised fine-tuning, reward models, DPO, RLOO, and the
self-distillation trainers SDFT and SDPO (TRL's experimental API, each in a module of its own)."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ilf.files import atomic_directory, atomic_write_json

if TYPE_CHECKING:
    import torch

    from ilf.config import ModelConfig

# TRL's configs default the deprecated `gradient_checkpointing` name, so every config would warn.
warnings.filterwarnings("ignore", message="`gradient_checkpointing` is deprecated", category=FutureWarning)


def common_trainer_args(
    device: torch.device | str,
    output_dir: str | Path,
    seed: int,
    *,
    dtype: torch.dtype | None = None,
    overrides: Mapping[str, Any] | None = None,
    **args: Any,
) -> dict[str, Any]:
    """Keyword arguments for any TRL trainer config (SFT, reward, DPO, RLOO) on ``device``.

    The shared part is what depends on the machine rather than the method: bf16 autocast only on
    a CUDA device that supports it and only for floating-point weights (``dtype``, the model's
    weight dtype, when known); no gradient checkpointing; ``use_cpu`` on a CPU; and no
    checkpoints, reports or progress bars, since ilf saves the model itself. ``args`` are the
    method's own settings (learning rate, batch size, ...), and ``overrides`` (a config's
    ``trainer_args``) replace anything, so a user can turn checkpointing or bf16 back on."""
    import torch

    device = torch.device(device)
    floating = dtype is None or dtype.is_floating_point
    result: dict[str, Any] = dict(
        output_dir=str(output_dir),
        seed=seed,
        # TRL defaults to bf16 autocast everywhere. On a CPU it is only faster where the CPU computes
        # bf16 natively (AVX512-BF16, AMX), and there it trained the demo's world model to a final
        # loss of 0.36 against float32's 0.21 (ilf.precision): trainer_args bf16=true opts in.
        bf16=device.type == "cuda" and floating and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=False,  # TRL turns it on: ~20% more compute for less memory, which overrides can ask for
        use_cpu=device.type == "cpu",
        save_strategy="no",  # save_trained writes the final model atomically; checkpoints would only cost time and disk
        report_to="none",
        disable_tqdm=True,
    )
    result.update(args)
    result.update(overrides or {})
    return result


def training_summary(trainer: Any, result: Any) -> dict[str, Any]:
    """Steps, mean loss, the first and last logged loss and the runtime of a finished ``trainer.train()``."""
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    return {
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "first_logged_loss": losses[0] if losses else None,
        "last_logged_loss": losses[-1] if losses else None,
        "runtime_seconds": result.metrics.get("train_runtime"),
    }


def warn_if_untested(package: str, tested: str) -> None:
    """Log a warning when ``package``'s installed version is outside the range ``tested`` (a PEP 440
    specifier): wrappers of experimental APIs name what they were tested with."""
    import logging
    from importlib.metadata import version

    from packaging.specifiers import SpecifierSet

    installed = version(package)
    if installed not in SpecifierSet(tested):
        logging.getLogger(__name__).warning(
            "%s %s is installed; this wrapper was tested with %s %s, and the experimental API it uses may have changed "
            "(the self-distillation extra pins it: bash scripts/setup-env.sh self-distillation, or pip install -e '.[self-distillation]' in a clone)",
            package,
            installed,
            package,
            tested,
        )


def prompt_room(model: Any, completion_tokens: int, wanted: int | None = None) -> int | None:
    """How many prompt tokens fit before ``completion_tokens`` in the model's context (and at most
    ``wanted``); None when neither limits it. Trainers that keep the prompt's last tokens need it:
    a teacher's prompt (the input, an earlier output and its critique) outgrows a small context."""
    context = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    room = context - completion_tokens if context else None
    limits = [x for x in (room, wanted) if x]
    return min(limits) if limits else None


def policy_with_path(policy: ModelConfig, work_dir: Path) -> ModelConfig:
    """The policy, saved to ``work_dir/initial-policy`` first when it is a model built from
    config (tiny:*, shape:*): trainers that rebuild a frozen copy (a reference, a teacher) from the model's
    ``name_or_path`` need a folder to rebuild it from."""
    import dataclasses

    from ilf.models import built_from_config, load_model, save_model

    if not built_from_config(policy.name_or_path):
        return policy
    initial = load_model(policy, for_training=True)  # the weights as training holds them (float32 on a CPU)
    save_model(initial.model, initial.tokenizer, work_dir / "initial-policy")
    return dataclasses.replace(policy, name_or_path=str(work_dir / "initial-policy"))


def save_trained(
    trainer: Any,
    model: Any,
    tokenizer: Any,
    out_dir: Path,
    metrics_file: str,
    metrics: dict[str, Any],
    work_dir: Path,
) -> None:
    """Write the trained model, its tokenizer and metrics to ``out_dir`` in one atomic step (on the
    main process only), then drop the trainer's scratch directory and wait for the other ranks.
    A model that trained a LoRA adapter (``finetune.lora``, ``reward.lora``, or one loaded with
    ``policy.adapter``) is saved whole, the adapter merged into its weights and kept in
    ``adapter/``: ``model/`` always loads with ``from_pretrained`` alone, as the next stage and
    round load it.

    Every rank must call this: under DeepSpeed ZeRO-3 or FSDP each rank holds only a shard of the
    weights, and gathering them into one state dict is a collective step."""
    state_dict = _gathered_state_dict(trainer)
    merge_lora = hasattr(model, "peft_config")  # a PeftModel: saved alone it is only its adapter
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
