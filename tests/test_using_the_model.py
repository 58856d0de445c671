"""The code of docs/using-the-model.md runs as written against a run that ``ilf run`` trained with
LoRA, and does what the page says it does: the generation loop reproduces the run's own evaluation
outputs, merging the kept adapter by hand gives the weights ``ilf`` saved, the configs load the
trained policy, and the ``ilf evaluate`` block generates what the run generated.

Every python block of the page must be run here, and the page's shell block is marked
``<!-- commands: test tests/test_using_the_model.py -->`` (docs/commands.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import REPO, slf5k_row, write_jsonl
from test_docs_commands import blocks, commands, ilf_arguments

from ilf.cli import main
from ilf.config import ModelConfig, load_config
from ilf.models import load_model, save_model

PAGE = REPO / "docs" / "using-the-model.md"
RUN = "runs/my_data"
HUB_BASE = "Qwen/Qwen2.5-1.5B"  # the page's base model; offline, a saved tiny model stands in for it


def page_blocks(language: str) -> list[str]:
    return [block.text for block in blocks(PAGE) if block.language == language]


def python_block(marker: str) -> str:
    """The page's one python block that contains ``marker``."""
    found = [text for text in page_blocks("python") if marker in text]
    assert len(found) == 1, f"{PAGE.name}: {len(found)} python blocks contain {marker!r}"
    return found[0]


# Each python block of the page, found by a line that only it has; a block added to the page
# without a test here fails test_every_python_block_is_tested.
LOAD = 'path = "runs/my_data/model"'
AS_THE_RUN = "task.postprocess(text) or task.fallback(text)"
MERGE = "merge_and_unload()"


@contextlib.contextmanager
def inside(folder: Path) -> Iterator[None]:
    """Work in ``folder``, as a reader of the page works in the folder that holds ``runs/``
    (contextlib.chdir is Python 3.11's; ilf supports 3.10)."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def run_block(code: str, folder: Path) -> tuple[str, dict]:
    """Run one block of the page as a script in ``folder``: what it printed, and its variables."""
    printed = io.StringIO()
    namespace: dict = {"__name__": "__main__"}
    with inside(folder), contextlib.redirect_stdout(printed):
        exec(compile(code, f"{PAGE.name}", "exec"), namespace)
    return printed.getvalue(), namespace


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``runs/my_data``: an ``ilf run`` whose policy was fine-tuned with LoRA.

    The base policy is a saved tiny model, as a hub model would be a folder the adapter can name
    (a ``tiny:*`` policy built in memory has none). ``sft_reference`` trains through the same
    ``finetune`` as ``ilf`` without a refiner; the high learning rate makes the fine-tuned policy
    write differently from the base, so a snippet that loaded the base would be caught."""
    folder = tmp_path_factory.mktemp("using-the-model")
    write_jsonl(folder / "data" / "train.jsonl", [slf5k_row(i) for i in range(8)])
    write_jsonl(folder / "data" / "test.jsonl", [slf5k_row(i, "test") for i in range(100, 104)])
    base = load_model(ModelConfig(name_or_path="tiny:gpt2"), for_training=True)
    save_model(base.model, base.tokenizer, folder / "base")
    (folder / "my_data.yaml").write_text(
        f"base: {REPO / 'experiments' / 'offline.yaml'}\n"
        "method: sft_reference\n"
        "data: {path: data, limit: 8, eval_limit: 4}\n"
        "policy: {name_or_path: base}\n"
        "finetune:\n"
        "  learning_rate: 1.0e-2\n"
        "  num_train_epochs: 4\n"
        "  per_device_train_batch_size: 4\n"
        "  lora: {r: 8, alpha: 16, dropout: 0.0, target_modules: [c_attn, c_fc]}\n"
        "evaluation: {sampling: {max_new_tokens: 12}}\n"
    )
    assert main(["run", str(folder / "my_data.yaml"), "--run-dir", str(folder / RUN)]) == 0
    assert (folder / RUN / "model" / "adapter" / "adapter_config.json").is_file()
    return folder


def outputs_of(path: Path, system: str) -> dict[str, str]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {row["sample_id"]: row["text"] for row in rows if row["system"] == system}


def test_every_python_block_is_tested() -> None:
    tested = {python_block(marker) for marker in (LOAD, AS_THE_RUN, MERGE)}
    assert set(page_blocks("python")) == tested


def test_loading_the_folder_and_generating_runs(workspace: Path) -> None:
    printed, names = run_block(python_block(LOAD), workspace)
    saved = load_model(ModelConfig(name_or_path=str(workspace / RUN / "model"))).model.state_dict()
    loaded = names["model"].state_dict()
    assert all(torch.equal(loaded[name], saved[name]) for name in saved)  # the trained weights, not the base's
    decoded = names["tokenizer"].decode(names["new_tokens"], skip_special_tokens=True)
    assert len(names["new_tokens"]) > 0 and printed == decoded + "\n"


def test_generating_as_the_run_did_reproduces_its_evaluation_outputs(workspace: Path) -> None:
    printed, _ = run_block(python_block(AS_THE_RUN), workspace)
    generated = dict(line.split(" ", 1) if " " in line else (line, "") for line in printed.splitlines())
    evaluated = outputs_of(workspace / RUN / "eval_outputs.jsonl", "finetuned")
    assert generated == evaluated
    assert evaluated != outputs_of(workspace / RUN / "eval_outputs.jsonl", "base")  # training changed them
    assert any(evaluated.values())


def test_merging_the_kept_adapter_by_hand_gives_the_weights_ilf_saved(workspace: Path) -> None:
    run_block(python_block(MERGE), workspace)
    merged = load_model(ModelConfig(name_or_path=str(workspace / "my_merged"))).model.state_dict()
    saved = load_model(ModelConfig(name_or_path=str(workspace / RUN / "model"))).model.state_dict()
    base = load_model(ModelConfig(name_or_path=str(workspace / "base"))).model.state_dict()
    assert merged.keys() == saved.keys()
    for name in saved:
        torch.testing.assert_close(merged[name], saved[name], msg=name)
    assert not torch.equal(saved["transformer.h.0.attn.c_attn.weight"], base["transformer.h.0.attn.c_attn.weight"])
    assert (workspace / "my_merged" / "tokenizer.json").is_file()


def logits(model: ModelConfig) -> torch.Tensor:
    loaded = load_model(model)
    ids = loaded.tokenizer("Title: a post\n\nText: a text\n\nTL;DR:", return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        return loaded.model(**ids).logits


def test_the_configs_on_the_page_load_the_trained_policy(workspace: Path) -> None:
    written = {}
    for text in page_blocks("yaml"):
        first, _, body = text.partition("\n")
        name = re.fullmatch(r"# file: (\S+)", first.strip())
        if name:
            # the hub base of the adapter config is, offline, the saved base the adapter was trained on
            (workspace / name.group(1)).write_text(body.replace(HUB_BASE, "base") + "\n")
            written[name.group(1)] = workspace / name.group(1)
    assert set(written) == {"next.yaml", "adapter.yaml"}
    trained = logits(ModelConfig(name_or_path=str(workspace / RUN / "model")))

    following = load_config(written["next.yaml"])
    assert Path(following.policy.name_or_path) == workspace / RUN / "model"
    torch.testing.assert_close(logits(following.policy), trained)

    with_adapter = load_config(written["adapter.yaml"])
    assert Path(with_adapter.policy.adapter) == workspace / RUN / "model" / "adapter"
    torch.testing.assert_close(logits(with_adapter.policy), trained, atol=1e-4, rtol=1e-4)  # unmerged: sums in another order
    assert not torch.allclose(logits(dataclasses.replace(with_adapter.policy, adapter=None)), trained, atol=1e-4)


def test_the_evaluate_command_generates_what_the_run_generated(workspace: Path) -> None:
    marked = [block for block in blocks(PAGE) if block.mark == "test" and block.mark_arg == "tests/test_using_the_model.py"]
    assert len(marked) == 1
    with inside(workspace):
        for command in commands(marked[0]):
            found = ilf_arguments(command)
            assert found, f"not an ilf command: {command}"
            assert main(found[1]) == 0, shlex.join(found[1])
    again = workspace / RUN / "again"
    assert json.loads((again / "metrics.json").read_text())
    systems = {json.loads(line)["system"] for line in (again / "outputs.jsonl").read_text().splitlines()}
    assert len(systems) == 1  # named after the model's folder
    assert outputs_of(again / "outputs.jsonl", systems.pop()) == outputs_of(workspace / RUN / "eval_outputs.jsonl", "finetuned")


def test_training_on_from_a_loaded_adapter_saves_the_whole_model(workspace: Path) -> None:
    """A policy given as base + ``policy.adapter`` trains that adapter; ``model/`` must still hold
    complete weights (saved alone, a PeftModel is only its adapter, and the evaluate stage that
    loads ``model/`` fails on it)."""
    further = workspace / "runs" / "further"
    overrides = [f"policy.adapter={workspace / RUN / 'model' / 'adapter'}", "finetune.lora=null", "finetune.num_train_epochs=1"]
    with inside(workspace):
        argv = ["run", "my_data.yaml", "--run-dir", str(further)]
        assert main([*argv, *(x for o in overrides for x in ("--set", o))]) == 0
    assert (further / "model" / "model.safetensors").is_file() and (further / "model" / "adapter" / "adapter_config.json").is_file()
    saved = load_model(ModelConfig(name_or_path=str(further / "model"))).model.state_dict()
    before = load_model(ModelConfig(name_or_path=str(workspace / RUN / "model"))).model.state_dict()
    assert saved.keys() == before.keys()
    assert any(not torch.equal(saved[name], before[name]) for name in saved)  # trained on from the first run's weights
    assert outputs_of(further / "eval_outputs.jsonl", "finetuned")
