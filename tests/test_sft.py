from pathlib import Path

import torch

from ilf.config import FinetuneConfig, LoraConfig, ModelConfig, TaskConfig
from ilf.models import load_model
from ilf.records import Sample, Selection
from ilf.tasks import get_task
from ilf.train.sft import build_trainer, finetune, training_pairs

PAIRS = [
    {"prompt": f"Title: case {i}\n\nText: the cat sat on mat {i}.\n\nTL;DR:", "completion": f" The cat sat on mat {i}."} for i in range(8)
]
POLICY = ModelConfig(name_or_path="tiny:gpt2", seed=0)


def test_sft_masks_the_prompt_changes_weights_and_lowers_completion_loss(tmp_path: Path) -> None:
    config = FinetuneConfig(learning_rate=3e-3, num_train_epochs=4, per_device_train_batch_size=4, logging_steps=1)
    trainer = build_trainer(POLICY, PAIRS, config, tmp_path / "work", eval_pairs=PAIRS)

    tokenizer = trainer.processing_class
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labels, ids = batch["labels"][0], batch["input_ids"][0]
    prompt_length = len(tokenizer(PAIRS[0]["prompt"], add_special_tokens=False)["input_ids"])
    assert (labels[:prompt_length] == -100).all()  # no loss on any prompt token
    assert (labels[prompt_length:] == ids[prompt_length:]).all()  # loss on every completion token, eos included
    assert ids[-1] == tokenizer.eos_token_id

    before_weights = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    before_loss = trainer.evaluate()["eval_loss"]
    trainer.train()
    after_loss = trainer.evaluate()["eval_loss"]
    changed = [k for k, v in trainer.model.named_parameters() if not torch.equal(v.detach(), before_weights[k])]
    assert len(changed) == len(before_weights)
    assert after_loss < before_loss - 1.0, (before_loss, after_loss)


def test_finetune_saves_a_model_that_loads_and_lora_is_merged(tmp_path: Path) -> None:
    config = FinetuneConfig(
        learning_rate=1e-2,
        num_train_epochs=1,
        per_device_train_batch_size=4,
        lora=LoraConfig(r=4, alpha=8, dropout=0.0, target_modules=["c_attn"]),
    )
    metrics = finetune(POLICY, PAIRS, config, tmp_path / "model")
    assert metrics["steps"] == 2 and metrics["pairs"] == 8
    assert (tmp_path / "model" / "adapter" / "adapter_config.json").exists()
    assert not list(tmp_path.glob(".model*"))  # no temporary directories left
    tuned = load_model(ModelConfig(name_or_path=str(tmp_path / "model")))
    base = load_model(POLICY)
    tuned_weights = dict(tuned.model.named_parameters())
    assert "lora" not in " ".join(tuned_weights)  # merged: a plain model again
    assert not torch.equal(
        tuned_weights["transformer.h.0.attn.c_attn.weight"], dict(base.model.named_parameters())["transformer.h.0.attn.c_attn.weight"]
    )
    assert torch.equal(
        tuned_weights["transformer.h.0.mlp.c_fc.weight"], dict(base.model.named_parameters())["transformer.h.0.mlp.c_fc.weight"]
    )


def test_training_targets() -> None:
    task = get_task(TaskConfig())
    samples = [
        Sample(id="a", inputs={"title": "t", "post": "p"}, initial_output="first try.", references=["human one."]),
        Sample(id="b", inputs={"title": "t2", "post": "p2"}, initial_output=None, references=[]),
    ]
    selections = [Selection(sample_id="a", selector="embedding", index=2, text="refined.")]
    pairs, counts = training_pairs(task, samples, "selected", selections)
    assert pairs == [{"prompt": task.initial_prompt(samples[0]), "completion": " refined."}]
    assert training_pairs(task, samples, "initial")[0][0]["completion"] == " first try."
    pairs, counts = training_pairs(task, samples, "reference")
    assert pairs[0]["completion"] == " human one." and counts == {"pairs": 1, "skipped_without_target": 1}


def test_finetune_command_under_a_two_process_launcher(tmp_path: Path) -> None:
    """`accelerate launch` starts ranks the way torchrun does; two CPU ranks (gloo) exercise it."""
    import json
    import subprocess
    import sys

    from ilf.records import write_records

    samples = [Sample(id=f"s{i}", inputs={"title": f"t{i}", "post": f"post {i}."}, initial_output=f"Summary {i}.") for i in range(20)]
    write_records(tmp_path / "samples.jsonl", samples)
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run(
        [
            str(torchrun),
            "--nproc_per_node",
            "2",
            "-m",
            "ilf",
            "finetune",
            "--samples",
            str(tmp_path / "samples.jsonl"),
            "--target",
            "initial",
            "--out",
            str(tmp_path / "model"),
            "--set",
            "finetune.per_device_train_batch_size=5",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("trained on 20 pairs for 2 steps") == 1  # 20 pairs / (2 ranks x 5), one report
    assert json.loads((tmp_path / "model" / "train_metrics.json").read_text())["steps"] == 2
    assert (tmp_path / "model" / "model.safetensors").exists()
