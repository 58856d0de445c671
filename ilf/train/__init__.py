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
    With ``merge_lora`` the adapter is kept in ``adapter/`` and merged into the saved weights."""
    if trainer.is_world_process_zero():
        with atomic_directory(out_dir) as tmp:
            if merge_lora:
                model.save_pretrained(str(tmp / "adapter"))
                model = model.merge_and_unload()
            model.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
            atomic_write_json(tmp / metrics_file, metrics)
        shutil.rmtree(work_dir, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
