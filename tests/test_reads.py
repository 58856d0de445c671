"""A stage is up to date exactly when everything it read is unchanged (``ilf.reads``).

Two tiny runs are made once: an ILF round on SLF5K-layout rows whose refiner has a LoRA adapter,
whose selector reads an embedder from a folder and whose also-scored selectors read a reward model
folder and a module of one's own; and a reward-model best-of-N run whose reward model starts from a
local folder. Each test changes one input the way a user would and asks which stages rerun; the
mutation test does so for every key of the config reference and every plug-in option.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, slf5k_row, small_run_overrides, write_jsonl

from ilf import reads
from ilf.config import ModelConfig, RunConfig, field_help, load_config
from ilf.pipeline import Pipeline
from ilf.plugin import options_help
from ilf.registry import ALL, TASKS
from ilf.results import RunResult
from ilf.rounds import open_run

OFFLINE = REPO / "experiments" / "offline.yaml"
OWN_SELECTOR = '''from ilf.selection import Selector


class Longest(Selector):
    """Scores a candidate by its length (a selector of one's own)."""

    def score(self, items):
        return [[float(len(c)) for c in item.candidates] for item in items]
'''
# What a run writes that a rerun in place must reproduce exactly (timings and paths apart).
COMPARED = (
    "samples.jsonl",
    "eval_samples.jsonl",
    "outputs.jsonl",
    "feedback.jsonl",
    "refinements.jsonl",
    "selected.jsonl",
    "eval_outputs.jsonl",
)


def _tiny_adapter(folder: Path) -> Path:
    """A LoRA adapter on the refiner (tiny:gpt2, seed 1), as a user's folder."""
    from peft import LoraConfig, get_peft_model

    from ilf.models import load_model

    base = load_model(ModelConfig(name_or_path="tiny:gpt2", seed=1, dtype="float32"))
    model = get_peft_model(base.model, LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"], init_lora_weights=False))
    model.save_pretrained(str(folder))
    return folder


def _tiny_reward_model(folder: Path) -> Path:
    from ilf.train.reward import load_classifier

    model, tokenizer = load_classifier(ModelConfig(name_or_path="tiny:gpt2", seed=3))
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def _tiny_model_folder(folder: Path) -> Path:
    from ilf.models import load_model, save_model

    loaded = load_model(ModelConfig(name_or_path="tiny:gpt2", seed=4, dtype="float32"))
    save_model(loaded.model, loaded.tokenizer, folder)
    return folder


def _data(folder: Path) -> Path:
    write_jsonl(folder / "train.jsonl", [slf5k_row(i, "train") for i in range(12)])
    write_jsonl(folder / "test.jsonl", [slf5k_row(i, "test") for i in range(100, 105)])
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The two runs, made once; tests that edit a file put it back."""
    from ilf.selection.embedding import default_embedder_path

    root = tmp_path_factory.mktemp("reads")
    data = _data(root / "data")
    (root / "own").mkdir()
    (root / "own" / "own_selector.py").write_text(OWN_SELECTOR)
    sys.path.insert(0, str(root / "own"))
    embedder = Path(shutil.copytree(default_embedder_path(), root / "embedder"))
    ilf_sets = [
        *small_run_overrides(data, limit=6, eval_limit=4),
        f"refiner.adapter={_tiny_adapter(root / 'adapter')}",
        f"selection_options.embedding.model={embedder}",
        "selection.also_score=[random, reward_model, 'own_selector:Longest']",
        f"selection_options.reward_model.path={_tiny_reward_model(root / 'scorer')}",
    ]
    ranking_sets = [
        *small_run_overrides(data, limit=6, eval_limit=4),
        "method=rm_best_of_n",
        f"reward.model.name_or_path={_tiny_model_folder(root / 'reward-base')}",
        "reward.best_of_n=2",
        "outputs.sampling.max_new_tokens=8",
    ]
    for sets, name in ((ilf_sets, "ilf"), (ranking_sets, "ranking")):
        Pipeline(load_config(OFFLINE, sets), root / name).run()
    yield {"root": root, "data": data, "embedder": embedder, "ilf": (ilf_sets, root / "ilf"), "ranking": (ranking_sets, root / "ranking")}
    sys.path.remove(str(root / "own"))


def states(run: tuple[Any, ...], *more: str) -> dict[str, str]:
    """The stages of a run (its sets, its folder, and the config file they apply to: the offline one
    unless a third item says otherwise) after more changes."""
    sets, run_dir, source = (*run, OFFLINE)[:3]
    return open_run(load_config(source, [*sets, *more]), run_dir).status()


def pending(run: tuple[Any, ...], *more: str) -> set[str]:
    return {stage for stage, state in states(run, *more).items() if state.startswith("pending")}


class edited:
    """A file changed in place for the block (its size and modification time kept when asked),
    then put back as it was."""

    def __init__(self, path: Path, change: Any, keep_time: bool = False) -> None:
        self.path, self.change, self.keep_time = path, change, keep_time

    def __enter__(self) -> Path:
        self.original = self.path.read_bytes()
        stat = self.path.stat()
        changed = self.change(self.original)
        assert changed != self.original
        self.path.write_bytes(changed)
        if self.keep_time:
            os.utime(self.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return self.path

    def __exit__(self, *exc: Any) -> None:
        self.path.write_bytes(self.original)


def _swap_two_letters(data: bytes) -> bytes:
    """The same bytes with two letters of the first line swapped: same size, other content."""
    at = data.index(b"sister") if b"sister" in data else data.index(b"my")
    return data[:at] + data[at + 1 : at + 2] + data[at : at + 1] + data[at + 2 :]


# ----- what a stage records ----------------------------------------------------------------------


def test_a_stage_records_the_keys_it_read_and_not_the_ones_it_did_not(world) -> None:
    _, run_dir = world["ilf"]
    marker = json.loads((run_dir / ".ilf/stages/evaluate.json").read_text())
    keys = {".".join(where) for kind, where, _ in marker["reads"] if kind == "config"}
    assert {"evaluation.sampling.max_new_tokens", "evaluation.sampling.do_sample", "policy.name_or_path", "seed"} <= keys
    assert "evaluation.sampling.temperature" not in keys  # greedy decoding never reads it
    assert "refine.sampling.temperature" not in keys and "name" not in keys
    outputs = {where for kind, where, _ in marker["reads"] if kind == "output"}
    assert {"eval_samples.jsonl", "model"} <= outputs and "eval_outputs.jsonl" not in outputs  # its own output is no input
    versions = {where[1] for kind, where, _ in marker["reads"] if kind == "probe" and where[0] == "version"}
    assert versions == {"ilf", "torch", "transformers", "trl"}


def test_an_unchanged_run_is_up_to_date_and_touching_or_rewriting_its_data_changes_nothing(world) -> None:
    assert set(states(world["ilf"]).values()) == {"done"}
    train = world["data"] / "train.jsonl"
    os.utime(train)  # touched
    train.write_bytes(train.read_bytes())  # written again, the same bytes
    assert set(states(world["ilf"]).values()) == {"done"}


# ----- the nine stale results (each reused before stages recorded their reads) -------------------


def test_best_of_n_evaluation_reads_how_outputs_are_sampled(world) -> None:
    """1. rm_best_of_n samples its N candidates like outputs.sampling."""
    assert pending(world["ranking"], "outputs.sampling.max_new_tokens=4") == {"evaluate"}
    assert pending(world["ranking"], "reward.best_of_n=3") == {"evaluate"}  # the reward model is not retrained for it


def test_what_dtype_auto_became_on_this_machine_is_read(world, monkeypatch) -> None:
    """2. The suite samples in float32 (ILF_CPU_DTYPE); bfloat16 reruns what sampled or scored, not training."""
    monkeypatch.setenv("ILF_CPU_DTYPE", "bfloat16")
    assert pending(world["ilf"]) == {"refine", "evaluate"}  # the refiner and the policy sample
    # training on a CPU stays float32 whatever auto becomes; the selectors' models load in float32
    marker = json.loads((world["ilf"][1] / ".ilf/stages/refine.json").read_text())
    assert ["probe", ["dtype", "auto", "cpu", False], "float32"] in marker["reads"]


def test_a_data_file_rewritten_with_its_size_and_time_kept_reruns_data(world, tmp_path: Path) -> None:
    """3. Content, not (size, mtime): cp -p, rsync -a and unpacked archives keep both. A rerun of a
    copy of the run in place then equals a fresh run on the edited file."""
    sets, source = world["ilf"]
    with edited(world["data"] / "train.jsonl", _swap_two_letters, keep_time=True):
        assert pending(world["ilf"]) == {"data"}
        shutil.copytree(source, tmp_path / "copy", symlinks=True)
        summaries = Pipeline(load_config(OFFLINE, sets), tmp_path / "copy").run()
        assert summaries["data"] != "skipped" and summaries["evaluate"] != "skipped"
        Pipeline(load_config(OFFLINE, sets), tmp_path / "fresh").run()
        assert _digests(tmp_path / "fresh") == _digests(tmp_path / "copy") != _digests(source)
    assert pending(world["ilf"]) == set()


def test_a_selector_module_of_ones_own_edited_reruns_select(world) -> None:
    """4. The source of a module.path:Name plug-in is read by content."""
    module = world["root"] / "own" / "own_selector.py"
    with edited(module, lambda b: b.replace(b"float(len(c))", b"float(-len(c))")):
        assert pending(world["ilf"]) == {"select"}


@pytest.mark.parametrize(
    ("folder", "file", "run", "stage"),
    [
        ("adapter", "adapter_config.json", "ilf", "refine"),  # 5. refiner.adapter
        ("embedder", "config.json", "ilf", "select"),  # 6. selection_options.embedding.model
        ("scorer", "config.json", "ilf", "select"),  # 7. selection_options.reward_model.path, retrained in place
        ("reward-base", "config.json", "ranking", "reward"),  # 8. reward.model
    ],
)
def test_a_folder_named_by_a_path_field_is_read_by_content(world, tmp_path: Path, folder: str, file: str, run: str, stage: str) -> None:
    """A rerun of a copy of the run in place then equals a fresh run with the edited folder."""
    sets, source = world[run]
    with edited(world["root"] / folder / file, lambda b: b.rstrip() + b"\n\n"):
        assert pending(world[run]) == {stage}
        shutil.copytree(source, tmp_path / "copy", symlinks=True)
        summaries = Pipeline(load_config(OFFLINE, sets), tmp_path / "copy").run()
        assert summaries[stage] != "skipped"
        Pipeline(load_config(OFFLINE, sets), tmp_path / "fresh").run()
        assert _digests(tmp_path / "fresh") == _digests(tmp_path / "copy")


def test_a_new_name_is_written_into_metrics_json_without_recomputing(world) -> None:
    """9. The run's name is no input of any stage; metrics.json says the name the config now gives."""
    sets, run_dir = world["ranking"]
    summaries = Pipeline(load_config(OFFLINE, [*sets, "name=renamed"]), run_dir).run()
    assert set(summaries.values()) == {"skipped"}
    assert RunResult.read(run_dir / "metrics.json").run == "renamed"


# ----- only what changed reruns, and a rerun in place equals a fresh run -------------------------


def _digests(run_dir: Path) -> dict[str, str]:
    found = {name: hashlib.sha256((run_dir / name).read_bytes()).hexdigest() for name in COMPARED if (run_dir / name).exists()}
    model = run_dir / "model" / "model.safetensors"
    if model.exists():
        found["model"] = hashlib.sha256(model.read_bytes()).hexdigest()
    return found


@pytest.mark.parametrize(
    ("run", "change", "reran"),
    [
        ("ilf", "refine.sampling.temperature=0.5", ["refine", "select", "finetune", "evaluate"]),
        ("ilf", "finetune.learning_rate=0.002", ["finetune", "evaluate"]),
        ("ranking", "outputs.sampling.max_new_tokens=4", ["evaluate"]),  # case 1: best-of-N samples like outputs.sampling
    ],
)
def test_a_rerun_in_place_after_a_change_equals_a_fresh_run(world, tmp_path: Path, run: str, change: str, reran: list[str]) -> None:
    sets, source = world[run]
    run_dir = tmp_path / "copy"
    shutil.copytree(source, run_dir, symlinks=True)
    summaries = Pipeline(load_config(OFFLINE, [*sets, change]), run_dir).run()
    assert [s for s, v in summaries.items() if v != "skipped"] == reran
    Pipeline(load_config(OFFLINE, [*sets, change]), tmp_path / "fresh").run()
    assert _digests(tmp_path / "fresh") == _digests(run_dir)


def test_an_evaluation_key_reruns_data_and_evaluate_and_the_result_equals_a_fresh_run(world, tmp_path: Path) -> None:
    """data.eval_limit is read by the data stage (which writes the held-out samples) and nothing
    trained reads those: data reruns to the same training samples, and only evaluate follows."""
    sets, _ = world["ilf"]
    run_dir = tmp_path / "copy"
    shutil.copytree(world["ilf"][1], run_dir, symlinks=True)
    run = (sets, run_dir)
    assert states(run, "data.eval_limit=3") == {
        "data": "pending",
        **{s: "waits on data" for s in ("outputs", "feedback", "refine", "select", "finetune", "evaluate")},
    }
    before = _digests(run_dir)
    summaries = Pipeline(load_config(OFFLINE, [*sets, "data.eval_limit=3"]), run_dir).run()
    assert [s for s, v in summaries.items() if v != "skipped"] == ["data", "evaluate"]
    after = _digests(run_dir)
    assert {k for k in before if before[k] != after[k]} == {"eval_samples.jsonl", "eval_outputs.jsonl"}
    Pipeline(load_config(OFFLINE, [*sets, "data.eval_limit=3"]), tmp_path / "fresh").run()
    assert _digests(tmp_path / "fresh") == after


# ----- every key and option, changed one at a time -----------------------------------------------

# A valid other value for keys the generic rule (flip, +1, halve, append) cannot change. A key that
# has none here and no generic change fails the test, so a new key is seen to.
CHANGES: dict[str, Any] = {
    "method": "sft_initial",
    "task.name": "template",
    "task.options": {"completion_prefix": "  "},
    "data.loader": "jsonl",
    "data.path": "other/path",
    "data.split": "validation",
    "data.eval_split": "validation",
    "data.eval_path": "other/test.jsonl",
    "data.eval_limit": 3,
    "data.fields": {"id": "id"},
    "feedback.source": "simulated",
    "selection.method": "random",
    "selection.also_score": ["random"],
    "finetune.target": "initial",
    "finetune.train_samples": 5,
    "finetune.budget": 120.0,
    "feedback_options.simulated.ask": "ranking",
    "feedback_options.simulated.comparisons_by": "oracle",
    "method_options.sdpo.judged_rollouts_per_sample": 3.0,
    "finetune.lr_scheduler_type": "cosine",
    "finetune.lora.target_modules": ["c_attn"],
    "finetune.trainer_args": {"max_grad_norm": 0.5},
    "reward.lora.target_modules": ["c_attn"],
    "evaluation.num_samples": 1,  # >1 needs sampling; see evaluation.sampling.do_sample
    "evaluation.metrics": ["rouge", "target_quality"],
    "world.preference": "hidden",
    "world.rule": "verb",
    "pretraining.dtype": "bfloat16",
    "pretraining.cache_dir": "other/cache",
    "labelstudio.project": "another {round}",
    "labelstudio.annotator": "simulated",
    "labelstudio.url": "http://127.0.0.1:9",
    "labelstudio.data_dir": "other/ls",
    "labelstudio.deadline": 60.0,
    "round_training": "restart",
    "metric_options.judge_win_rate.kind": "annotator",
    "metric_options.judge_win_rate.prompt": "facts",
    "metric_options.judge_win_rate.answers": [" 1", " 2"],
    "metric_options.judge_win_rate.mode": "generate",
    "metric_options.judge_win_rate.against": "base",
    # set with the file it names a system of (a change of two keys)
    "metric_options.judge_win_rate.against_system": ["metric_options.judge_win_rate.against={root}/opponent.jsonl", "base"],
    "metric_options.judge_win_rate.human": "{root}/pairs.jsonl",
    "method_options.sdft.teacher": "context",
    "method_options.sdft.teacher_model_kind": "live",
    "method_options.sdpo.reward": "oracle",
    "method_options.sdpo.teacher": "context",
    "method_options.sdpo.num_generations": 8,
    "method_options.sdft.trainer_args": {"max_grad_norm": 0.5},
    "method_options.sdpo.trainer_args": {"max_grad_norm": 0.5},
    "method_options.rloo.per_device_train_batch_size": 4,
    "method_options.sdpo.per_device_train_batch_size": 8,
    "feedback_options.file.path": "other/feedback.jsonl",
    "feedback_options.labelstudio.project": "critiques",
    "selection_options.labelstudio.project": "picks",
    "selection_options.reward_model.path": "other/reward",
    "selection_options.embedding_edit.model": "other/embedder",
    "selection_options.embedding.model": None,  # the packaged MiniLM instead of the run's copy
    "refiner.adapter": None,
    "selection_options.instruct_rm.judge": {"name_or_path": "tiny:llama"},
    "method_options.before.system": "model",
    "method_options.outputs.source": "references",
    "task.options.isolation": "unsafe_process",
    "task.options.executor": "spawn",
    "task.options.workers": 1,
    "task.options.cache_dir": "other/cache",
    "task.options.training_tests": "visible",
}
_MODEL_CHANGES = {
    "name_or_path": "tiny:llama",
    "kind": "causal",
    "dtype": "float32",
    "device": "cpu",
    "adapter": "other/adapter",
    "backend": "openai",
    "base_url": "http://127.0.0.1:9/v1",
    "api_key_env": "OTHER_KEY",
}
# The sections of plug-in options, whose keys are changed one by one instead (so are the keys of an
# optional section, ``refiner: null``, rather than the section).
_WHOLE = {"method_options", "selection_options", "feedback_options", "metric_options"}
SECTION = "(a section: the keys below)"


def _change(key: str, value: Any) -> Any:
    if key in CHANGES:
        return CHANGES[key]
    leaf = key.rsplit(".", 1)[-1]
    if leaf in _MODEL_CHANGES:
        return _MODEL_CHANGES[leaf]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.5
    if isinstance(value, str) and (leaf in ("name", "context_text", "completion_prefix") or leaf.endswith("_template")):
        return value + " (changed)"
    if value is None and leaf in ("max_prompt_tokens",):
        return 7
    if isinstance(value, str) and leaf in ("path", "model", "adapter", "cache_dir"):
        return value + "-other"
    raise AssertionError(f"no change known for {key} (value {value!r}): add one to CHANGES")


def _every_key(config: RunConfig) -> list[tuple[str, Any]]:
    keys = []
    for key, default, help in field_help(RunConfig):
        if help.endswith(SECTION):
            continue
        value = reads.lookup(config, key.split("."))
        keys.append((key, json.loads(default) if value == reads.MISSING else value))  # a key of a section the run leaves unset
    for registry in ALL:
        if not registry.options_key:
            continue
        for name in registry.names():
            where, rows = options_help(registry, name)
            defaults = json.loads(json.dumps(reads.plain(registry.get(name).options(config)))) if rows else {}
            for key, default, help in rows:
                if help.endswith(SECTION):
                    continue
                node: Any = defaults
                for part in key.removeprefix(where + ".").split("."):
                    node = node.get(part) if isinstance(node, dict) else None
                keys.append((key, json.loads(default) if node is None else node))
    task = TASKS.get(config.task.name)  # the run's task's own options, one by one
    owner = getattr(task, "__self__", task)
    for f in dataclasses.fields(owner):
        keys.append((f"task.options.{f.name}", f.default))
    return [(key, value) for key, value in keys if key not in _WHOLE]


def test_every_key_and_option_changed_alone_reruns_a_stage_or_changes_no_output(world, tmp_path: Path) -> None:
    """For each key of the config reference and each plug-in option: the stages that read it are
    pending after a change. The keys that leave every stage up to date are then changed all at once
    in a fresh run, which must write exactly what the run wrote: a key some stage reads without
    recording it would change an output there. (The options of tasks other than the run's, the code
    task's, cannot be set on a summarization run.)"""
    sets, run_dir = world["ilf"]
    base = load_config(OFFLINE, sets)
    (world["root"] / "pairs.jsonl").write_text(json.dumps({"sample_id": "train-0000", "a": "x.", "b": "y.", "preferred": "a"}) + "\n")
    (world["root"] / "opponent.jsonl").write_text(json.dumps({"sample_id": "test-0100", "text": "x.", "system": "base"}) + "\n")
    reran, idle = _change_each((sets, run_dir), _every_key(base), world["root"])
    # the stages each kind of key reruns, as a person would expect
    assert "outputs.sampling.temperature" not in reran  # the outputs critiqued are the dataset's: nothing sampled them
    assert reran["refine.sampling.temperature"] == {"refine"}
    assert reran["selection_options.random.seed"] == {"select"}
    assert reran["finetune.learning_rate"] == {"finetune"}
    assert reran["evaluation.sampling.max_new_tokens"] == {"evaluate"}
    assert reran["data.limit"] == {"data"}
    # the offline data's critiques carry the lead times their annotators took: they price them, so no stage reads cost.critique
    assert "cost.critique" not in reran and any(change.startswith("cost.critique=") for change in idle)
    assert reran["finetune.budget"] >= {"finetune", "evaluate"}  # a budget picks the samples training reads
    assert "name" not in reran and "labelstudio.port" not in reran and "method_options.dpo.beta" not in reran
    assert len(idle) > 50
    _assert_no_output_changes(sets, run_dir, idle, tmp_path)


def test_every_option_of_the_code_task_reruns_what_reads_the_task(tmp_path: Path) -> None:
    """The code task's options (its sandbox's limits, its prompts) on a code round up to select:
    each change leaves the stages that use the task pending, or, if none, changes no output."""
    from ilf.tasks.code import CodeTask

    sets = _code_sets(tmp_path)
    run_dir = tmp_path / "code"
    Pipeline(load_config(None, sets), run_dir).run()
    keys = [
        (f"task.options.{f.name}", {"timeout": 5, "include_test_output": True}.get(f.name, f.default)) for f in dataclasses.fields(CodeTask)
    ]
    reran, idle = _change_each((sets, run_dir, None), keys, tmp_path)
    assert reran["task.options.timeout"] >= {"feedback", "refine", "select", "evaluate"}  # the sandbox's limit: the programs' verdicts
    assert reran["task.options.refine_template"] >= {"refine"} and all("data" not in stages for stages in reran.values())
    assert reran["task.options.training_tests"] >= {"feedback", "select"}  # which tests execution and the pick run
    assert len(reran) + len(idle) == len(keys) == 16
    if idle:
        _assert_no_output_changes(sets, run_dir, idle, tmp_path, source=None)


def _code_sets(tmp_path: Path) -> list[str]:
    from conftest import code_round_sets, ilf_code_rows

    return code_round_sets(write_jsonl(tmp_path / "annotations.jsonl", ilf_code_rows()))


def _change_each(run: tuple[Any, ...], keys: list[tuple[str, Any]], root: Path) -> tuple[dict[str, set[str]], list[str]]:
    """Each key changed alone: the stages it leaves pending, by key, and the changes that leave none."""
    idle: list[str] = []
    reran: dict[str, set[str]] = {}
    refused: list[str] = []
    for key, value in keys:
        new = _change(key, value)
        together = (
            [more.replace("{root}", str(root)) for more in new[:-1]]
            if key in CHANGES and isinstance(CHANGES[key], list) and isinstance(new[0], str) and "=" in new[0]
            else []
        )
        new = new[-1] if together else new
        new = new.replace("{root}", str(root)) if isinstance(new, str) else new
        change = f"{key}={json.dumps(new)}"
        try:
            stages = pending(run, *together, change)
        except Exception as err:  # noqa: BLE001 - every refused change is listed at once
            refused.append(f"{change}: {err}")
            continue
        if stages:
            reran[key] = stages
        else:
            idle += [*together, change]
    assert not refused, "changes the config refuses (give their keys another value in CHANGES):\n" + "\n".join(refused)
    return reran, idle


def _assert_no_output_changes(
    sets: list[str], run_dir: Path, idle: list[str], tmp_path: Path, source: Path | None = OFFLINE, until: str | None = None
) -> None:
    """Every change that reran nothing, at once, in a fresh run: the same outputs, or the key that changed one."""
    expected = _digests(run_dir)
    if _fresh_digests(sets, idle, tmp_path, source, until) != expected:
        culprits = idle
        while len(culprits) > 1:  # halve the changes until one is left that changes an output alone
            half = culprits[: len(culprits) // 2]
            culprits = half if _fresh_digests(sets, half, tmp_path, source, until) != expected else culprits[len(culprits) // 2 :]
        raise AssertionError(f"{culprits[0]} changes an output while every stage says it is up to date")


def _fresh_digests(
    sets: list[str], changes: list[str], tmp_path: Path, source: Path | None = OFFLINE, until: str | None = None
) -> dict[str, str]:
    fresh = tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*')))}"
    Pipeline(load_config(source, [*sets, *changes]), fresh).run(until=until)
    return _digests(fresh)


def test_a_marker_written_before_stages_recorded_their_reads_recomputes_once(world, tmp_path: Path, caplog) -> None:
    sets, source = world["ranking"]
    run_dir = tmp_path / "old"
    shutil.copytree(source, run_dir, symlinks=True)
    marker = run_dir / ".ilf/stages/data.json"
    old = json.loads(marker.read_text())
    old.pop("reads")
    old["fingerprint"] = "0123456789abcdef"
    marker.write_text(json.dumps(old))
    assert states((sets, run_dir))["data"] == "pending"
    summaries = Pipeline(load_config(OFFLINE, sets), run_dir).run()
    assert "listed each stage's inputs by hand" in caplog.text
    assert summaries["data"] != "skipped" and summaries["evaluate"] == "skipped"  # the same samples: nothing after reruns
    assert set(states((sets, run_dir)).values()) == {"done"}


def test_content_digests_are_cached_by_file_identity_and_see_an_edit_that_keeps_size_and_time(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("abcdef")
    first = reads.content_digest(path)
    stat = path.stat()
    path.write_text("abcdeg")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert reads.content_digest(path) != first
    copy = tmp_path / "g.txt"
    shutil.copy(path, copy)
    assert reads.content_digest(copy) == reads.content_digest(path)  # content, not name or time
    assert reads.content_digest(tmp_path / "missing") == reads.MISSING


def test_a_section_that_appears_twice_is_recorded_under_each_key() -> None:
    config = load_config(None, ["refiner.name_or_path=tiny:gpt2"])
    config = dataclasses.replace(config, refiner=config.policy)  # the same object twice
    reads.bind(config)
    with reads.recording() as recorded:
        _ = config.refiner.seed, config.policy.seed
    assert {tuple(where) for _, where, _ in recorded.entries()} == {("refiner", "seed"), ("policy", "seed")}
