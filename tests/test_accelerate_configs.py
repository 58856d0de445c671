"""The `accelerate launch` configs under experiments/accelerate, and saving a model trained sharded.

Every config goes through accelerate's own parsing (the config file loader, the launcher's
validation, the environment it hands the ranks, the plugin the ranks build from it). DeepSpeed and
FSDP need GPUs, so what runs here is the DDP config on two CPU ranks (gloo) and, under torchrun,
the save path of an FSDP2-sharded model, which is what FSDP and ZeRO-3 change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "experiments" / "accelerate"
CONFIGS = sorted(p.name for p in CONFIG_DIR.glob("*.yaml"))
EXPECTED = {"multi_gpu.yaml": "MULTI_GPU", "deepspeed_zero2.yaml": "DEEPSPEED", "deepspeed_zero3.yaml": "DEEPSPEED", "fsdp.yaml": "FSDP"}
BIN = Path(sys.executable).parent


def _launch(name: str) -> tuple[Any, Any, dict[str, str]]:
    """What `accelerate launch --config_file <name> -m ilf finetune` makes of the file: its
    parsed config, the launcher's arguments and the environment each rank starts with."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import (
        _validate_launch_command,
        launch_command_parser,
    )
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    config = load_config_from_file(str(CONFIG_DIR / name))
    args = launch_command_parser().parse_args(["--config_file", str(CONFIG_DIR / name), "-m", "ilf", "finetune"])
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        env = prepare_deepspeed_cmd_env(args)[1]
    else:
        env = prepare_multi_gpu_env(args)
    return config, args, env


def test_the_expected_configs_ship() -> None:
    assert CONFIGS == sorted(EXPECTED)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_parses_and_launches_one_rank_per_gpu(name: str) -> None:
    from accelerate.commands.launch import launch_command_parser

    config, args, env = _launch(name)
    assert config.distributed_type.value == EXPECTED[name]
    assert config.num_processes == 8 and args.num_processes == 8 and config.num_machines == 1
    assert config.mixed_precision == "bf16" and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    assert not config.use_cpu
    # The launcher copies the nested keys onto its own options without checking them: a misspelt
    # key would be dropped silently, so each must be one of `accelerate launch`'s options.
    options = {action.dest for action in launch_command_parser()._actions}
    nested = list(config.deepspeed_config) + [k if k.startswith("fsdp_") else f"fsdp_{k}" for k in config.fsdp_config]
    assert set(nested) <= options, set(nested) - options
    # The header says when to use it and gives the exact command.
    header = (CONFIG_DIR / name).read_text().split("\ncompute_environment")[0]
    assert f"accelerate launch --config_file experiments/accelerate/{name}" in header
    assert "-m ilf finetune" in header and "--num_processes" in header


def test_fsdp_config_is_fsdp2_full_shard_per_block_with_a_loadable_save(monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate.utils import FullyShardedDataParallelPlugin

    _, args, env = _launch("fsdp.yaml")
    assert args.use_fsdp and env["ACCELERATE_USE_FSDP"] == "true"
    for name, value in env.items():  # what each rank's process starts with
        monkeypatch.setenv(name, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2
    assert plugin.reshard_after_forward is True  # full shard
    assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"
    assert plugin.state_dict_type.name == "FULL_STATE_DICT"
    assert plugin.cpu_ram_efficient_loading is False  # ilf loads the model before FSDP exists


@pytest.mark.parametrize("name, stage", [("deepspeed_zero2.yaml", 2), ("deepspeed_zero3.yaml", 3)])
def test_deepspeed_configs_become_the_intended_deepspeed_config(name: str, stage: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate.utils import DeepSpeedPlugin

    _, args, env = _launch(name)
    assert args.use_deepspeed
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    plugin = DeepSpeedPlugin()
    plugin.set_mixed_precision(env["ACCELERATE_MIXED_PRECISION"])
    ds = plugin.deepspeed_config
    assert ds["zero_optimization"]["stage"] == stage
    assert ds["bf16"] == {"enabled": True}
    # Left to the trainer, i.e. to finetune.gradient_accumulation_steps and the run's batch size.
    assert ds["gradient_accumulation_steps"] == ds["train_micro_batch_size_per_gpu"] == "auto"
    if stage == 3:
        # Gathers one 16-bit state dict at the end: what save_trained writes as model.safetensors.
        assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def _initial_weights() -> dict[str, torch.Tensor]:
    from ilf.config import ModelConfig
    from ilf.models import load_model

    return dict(load_model(ModelConfig(name_or_path="tiny:gpt2", seed=0)).model.state_dict())


def test_finetune_under_accelerate_launch_with_the_ddp_config(tmp_path: Path) -> None:
    """The shipped DDP config, two ranks: on this CPU-only run they talk over gloo. (`--cpu` would
    start a single process: accelerate needs mpirun for several CPU ranks.)"""
    from ilf.config import ModelConfig
    from ilf.models import load_model
    from ilf.records import Sample, write_records

    samples = [Sample(id=f"s{i}", inputs={"title": f"t{i}", "post": f"post {i}."}, initial_output=f"Summary {i}.") for i in range(20)]
    write_records(tmp_path / "samples.jsonl", samples)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # two ranks on the CPU whatever the machine has
    result = subprocess.run(
        [
            str(BIN / "accelerate"),
            "launch",
            "--config_file",
            str(CONFIG_DIR / "multi_gpu.yaml"),
            "--num_processes",
            "2",
            "--mixed_precision",
            "no",
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
            "--set",
            "finetune.learning_rate=0.001",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained on 20 pairs for 2 steps") == 1  # 20 pairs / (2 ranks x 5): both ranks trained
    assert json.loads((tmp_path / "model" / "train_metrics.json").read_text())["steps"] == 2
    tuned = dict(load_model(ModelConfig(name_or_path=str(tmp_path / "model"))).model.state_dict())
    before = _initial_weights()
    assert tuned.keys() == before.keys()
    assert all(not torch.equal(tuned[k], before[k]) for k in before)


SHARDED_SAVE = textwrap.dedent('''
    """Train tiny GPT-2 sharded with FSDP2 on two CPU ranks, then save it with save_trained."""
    import json, sys, types
    from pathlib import Path

    import torch
    import torch.distributed as dist
    from accelerate import Accelerator
    from accelerate.utils import DistributedType
    from peft import LoraConfig, get_peft_model
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from ilf.models import tiny_model
    from ilf.train import save_trained

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    # Accelerate's own gathering, as Accelerator.get_state_dict runs it for an FSDP2 model.
    gather = types.SimpleNamespace(distributed_type=DistributedType.FSDP, is_fsdp2=True)
    report = {}
    for kind in ("full", "lora"):
        model, tokenizer = tiny_model("gpt2", 0)
        if kind == "lora":
            model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], task_type="CAUSAL_LM"))
        for block in (model.get_base_model() if kind == "lora" else model).transformer.h:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        torch.manual_seed(rank)
        for _ in range(3):
            ids = torch.randint(0, 700, (2, 16))
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        probe = torch.arange(32)[None] % 700
        model.eval()  # no dropout: the saved model must give the same loss
        with torch.no_grad():
            sharded_loss = model(input_ids=probe, labels=probe).loss.item()
        trainer = types.SimpleNamespace(
            is_fsdp_enabled=True, model=model, is_world_process_zero=lambda: rank == 0,
            accelerator=types.SimpleNamespace(get_state_dict=lambda m: Accelerator.get_state_dict(gather, m),
                                              wait_for_everyone=dist.barrier))
        out = Path(sys.argv[1]) / kind
        save_trained(trainer, model, tokenizer, out, "metrics.json", {"kind": kind}, out.parent / f".{kind}.trainer")
        report[kind] = {"sharded_loss": sharded_loss,
                        "param_type": type(next(model.parameters())).__name__}
    if rank == 0:
        (Path(sys.argv[1]) / "report.json").write_text(json.dumps(report))
    dist.destroy_process_group()
''')


def test_save_trained_gathers_an_fsdp2_sharded_model_into_a_loadable_checkpoint(tmp_path: Path) -> None:
    """Under FSDP (and ZeRO-3) each rank holds a shard: the model must be gathered by every rank
    together, and a LoRA adapter merged outside the sharded modules."""
    from transformers import AutoModelForCausalLM

    script = tmp_path / "sharded_save.py"
    script.write_text(SHARDED_SAVE)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [str(BIN / "torchrun"), "--nproc_per_node", "2", str(script), str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    before = _initial_weights()
    probe = torch.arange(32)[None] % 700
    for kind in ("full", "lora"):
        assert report[kind]["param_type"] == "DTensor"  # really trained sharded
        saved = AutoModelForCausalLM.from_pretrained(str(tmp_path / kind))
        with torch.no_grad():
            assert saved(input_ids=probe, labels=probe).loss.item() == pytest.approx(report[kind]["sharded_loss"], abs=1e-4)
        weights = saved.state_dict()
        changed = {k for k in before if not torch.equal(weights[k], before[k])}
        if kind == "full":
            assert changed == set(before)
        else:
            assert "lora" not in " ".join(weights)  # merged into a plain model
            assert changed == {"transformer.h.0.attn.c_attn.weight", "transformer.h.1.attn.c_attn.weight"}
            assert (tmp_path / kind / "adapter" / "adapter_config.json").exists()
            assert weights["lm_head.weight"].data_ptr() == weights["transformer.wte.weight"].data_ptr()  # still tied
    assert not list(tmp_path.glob(".*.trainer")) and not list(tmp_path.glob(".*.tmp"))
