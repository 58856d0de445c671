from pathlib import Path

import pytest

from ilf.config import ConfigError, fingerprint, load_config

REPO = Path(__file__).resolve().parent.parent
OFFLINE = REPO / "experiments" / "offline.yaml"


def test_offline_config_loads_with_typed_overrides() -> None:
    config = load_config(
        REPO / "experiments/offline.yaml",
        ["data.limit=7", "refine.sampling.temperature=0.7", "selection.also_score=[random]", "finetune.lora={r: 4}"],
    )
    assert config.data.limit == 7
    assert config.refine.sampling.temperature == 0.7
    assert config.selection.also_score == ["random"]
    assert config.finetune.lora is not None and config.finetune.lora.r == 4 and config.finetune.lora.alpha == 32
    assert config.refiner_model.name_or_path == "tiny:gpt2" and config.refiner_model.seed == 1


def test_override_changes_fingerprint_only_of_what_changed() -> None:
    base = load_config(REPO / "experiments/offline.yaml")
    other = load_config(REPO / "experiments/offline.yaml", ["selection.method=random"])
    assert fingerprint(base.refine) == fingerprint(other.refine)
    assert fingerprint(base.selection) != fingerprint(other.selection)


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("finetune:\n  learning_rte: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: field 'finetune.learning_rte': unknown key")


def test_override_of_unknown_key_and_wrong_type() -> None:
    with pytest.raises(ConfigError, match=r"field 'refine.num_candidate': unknown key"):
        load_config(None, ["refine.num_candidate=3"])
    with pytest.raises(ConfigError, match=r"field 'refine.num_candidates': expected an integer, got \"many\""):
        load_config(None, ["refine.num_candidates=many"])
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_config(None, ["refine.num_candidates"])


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ndata:\n  limit: [1,\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: not valid YAML"):
        load_config(path)


def test_exponent_numbers_without_a_dot_are_numbers(tmp_path: Path) -> None:
    """YAML 1.1 reads 1e-5 as a string; a learning rate written that way must still load."""
    path = tmp_path / "c.yaml"
    path.write_text("finetune:\n  learning_rate: 1e-5\n")
    assert load_config(path).finetune.learning_rate == 1e-5
    assert load_config(None, ["finetune.learning_rate=3E-4"]).finetune.learning_rate == 3e-4
    with pytest.raises(ConfigError, match="expected a number"):
        load_config(None, ["finetune.learning_rate=fast"])


def test_remote_backend_settings_load() -> None:
    config = load_config(
        None, ["refiner.backend=openai", "refiner.remote.concurrency=32", "refiner.remote.base_url=http://10.0.0.5:8000/v1"]
    )
    assert config.refiner.backend == "openai" and config.refiner.remote.concurrency == 32
    assert config.refiner.remote.base_url == "http://10.0.0.5:8000/v1" and config.refiner.remote.api_key_env is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("refine.num_candidates=0", r"field 'refine.num_candidates': must be at least 1, got 0"),
        ("refine.sampling.temperature=-0.5", r"field 'refine.sampling.temperature': must be > 0 when do_sample is true"),
        ("outputs.sampling.top_p=1.5", r"field 'outputs.sampling.top_p': must be in \(0, 1\]"),
        ("evaluation.sampling.max_new_tokens=0", r"field 'evaluation.sampling.max_new_tokens': must be at least 1"),
    ],
)
def test_sampling_values_are_checked_when_the_config_loads(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_relative_paths_resolve_against_the_config_files_folder(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "exp").mkdir()
    (folder / "exp" / "c.yaml").write_text(
        "data:\n  path: ../data\nfeedback_options:\n  file:\n    path: ./fb.jsonl\npolicy:\n  name_or_path: Qwen/Qwen2.5-1.5B\n"
    )
    monkeypatch.chdir(tmp_path)  # another folder than the config's
    config = load_config(folder / "exp" / "c.yaml")
    assert config.data.path == str((folder / "data").resolve())
    assert config.feedback_options["file"]["path"] == str((folder / "exp" / "fb.jsonl").resolve())  # a plug-in's path option
    assert config.policy.name_or_path == "Qwen/Qwen2.5-1.5B"  # a hub id stays as written
    assert load_config(folder / "exp" / "c.yaml", ["data.path=rel/x"]).data.path == "rel/x"  # --set is relative to the shell


def test_a_config_extends_its_base_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.yaml").write_text("name: base\ndata: {loader: jsonl, path: ./rows, limit: 7}\nrefine: {num_candidates: 3}\n")
    (tmp_path / "sub" / "child.yaml").write_text("base: ../base.yaml\nname: child\ndata: {limit: 9}\n")
    config = load_config(tmp_path / "sub" / "child.yaml")
    assert (config.name, config.data.loader, config.data.limit, config.refine.num_candidates) == ("child", "jsonl", 9, 3)
    assert config.data.path == str(tmp_path / "rows")  # the base's relative path resolves against the base's folder
    (tmp_path / "base.yaml").write_text("base: sub/child.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "sub" / "child.yaml")


def test_hidden_world_and_rounds_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="world.preference.*expected one of 'cued', 'hidden', got \"secret\""):
        load_config(OFFLINE, ["world.preference=secret"])
    with pytest.raises(ConfigError, match="rounds"):
        load_config(OFFLINE, ["rounds=0"])
    with pytest.raises(ConfigError, match="data.limit"):
        load_config(OFFLINE, ["rounds=2", "data.limit=null"])
    with pytest.raises(ConfigError, match="round_training"):
        load_config(OFFLINE, ["round_training=sometimes"])


# ----- plug-in options ---------------------------------------------------------------------------


OLD_CONFIG = """\
method: dpo
selection:
  method: instruct_rm
  also_score: [embedding, random]
  judge: {name_or_path: ./judge}
  embedder: ./embedder
  seed: 7
feedback: {source: file, path: fb.jsonl}
dpo: {beta: 0.3}
evaluation:
  metrics: [rouge, judge_win_rate]
  judge: {kind: annotator, against: references}
"""


def test_a_config_of_the_old_shape_still_loads_each_old_key_named_once_with_its_new_place(tmp_path: Path, caplog) -> None:
    for name in ("judge", "embedder"):
        (tmp_path / name).mkdir()
    (tmp_path / "fb.jsonl").write_text("")
    (tmp_path / "old.yaml").write_text(OLD_CONFIG)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with caplog.at_level("WARNING", logger="ilf.config"):
        config = load_config(tmp_path / "old.yaml")
    # each value sits in its plug-in's options, relative paths resolved against the old file's folder
    assert config.selection_options == {
        "instruct_rm": {"judge": {"name_or_path": str(tmp_path / "judge")}},
        "embedding": {"model": str(tmp_path / "embedder")},
        "embedding_edit": {"model": str(tmp_path / "embedder")},  # it took selection.embedder too
        "random": {"seed": 7},
    }
    assert config.feedback_options == {"file": {"path": str(tmp_path / "fb.jsonl")}}
    assert config.method_options == {"dpo": {"beta": 0.3}}
    assert config.metric_options == {"judge_win_rate": {"kind": "annotator", "against": "references"}}
    lines = [r.getMessage() for r in caplog.records]
    assert f"{tmp_path / 'old.yaml'}: selection.judge is now selection_options.instruct_rm.judge" in lines[0]
    assert any(
        "selection.embedder is now selection_options.embedding.model and selection_options.embedding_edit.model" in line for line in lines
    )
    assert any("dpo is now method_options.dpo" in line for line in lines) and any(
        "evaluation.judge is now metric_options.judge_win_rate" in line for line in lines
    )
    assert len(lines) == 6  # one line a key
    caplog.clear()
    with caplog.at_level("WARNING", logger="ilf.config"):
        again = load_config(tmp_path / "old.yaml")
    assert again == config and not caplog.records  # said once per config and key
    # --set takes the old keys too, and says so
    assert load_config(None, ["method=dpo", "dpo.beta=0.5"]).method_options == {"dpo": {"beta": 0.5}}


def test_an_old_key_beside_its_new_place_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"field 'selection.seed': is the old place of selection_options.random.seed, which is set too"):
        load_config(None, ["selection_options.random.seed=1", "selection.seed=2"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("selection_options.radnom.seed=1", r"field 'selection_options.radnom': unknown selector 'radnom' \(did you mean 'random'\?\)"),
        ("selection_options.random.sed=1", r"field 'selection_options.random.sed': unknown key 'sed' \(did you mean 'seed'\?\)"),
        ("method_options.dpo.beta=high", r"field 'method_options.dpo.beta': expected a number"),
        ("metric_options.rouge.x=1", r"field 'metric_options.rouge': rouge has no options of its own"),
        ("feedback_options.file.path=[1]", r"field 'feedback_options.file.path'"),
    ],
)
def test_plugin_options_are_checked_when_the_config_loads(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_a_plugin_reads_its_own_options_and_its_defaults() -> None:
    from ilf.methods.ranking import DPO
    from ilf.selection.random_choice import RandomSelector

    config = load_config(None, ["selection.method=random", "selection_options.random.seed=5"])
    assert RandomSelector.from_config(config).seed == 5
    assert DPO.options(config).beta == 0.1  # unset: the default


def test_config_fields_lists_the_options_of_the_plugins_a_config_names(tmp_path: Path, capsys) -> None:
    from ilf.cli import main

    (tmp_path / "c.yaml").write_text("selection: {method: random}\nfeedback: {source: simulated}\nmethod: dpo\n")
    assert main(["config", "--fields", str(tmp_path / "c.yaml")]) == 0
    keys = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert {"selection_options.random.seed", "feedback_options.simulated.comparisons_per_sample", "method_options.dpo.beta"} <= keys
    assert "selection_options.instruct_rm.judge" not in keys and "method_options.rloo.max_steps" not in keys


def test_a_class_of_ones_own_may_not_declare_the_name_of_a_registered_plugin(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "clash.py").write_text(
        "from ilf.selection import Selector\n\n\nclass Mine(Selector):\n    name = 'random'\n\n"
        "    def score(self, items):\n        return [[0.0] * len(i.candidates) for i in items]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"clash:Mine declares the name 'random', which another selector is registered by"):
        load_config(None, ["selection.method=clash:Mine"])
