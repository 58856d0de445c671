from pathlib import Path

import pytest

from ilf.config import ConfigError, fingerprint, load_config

REPO = Path(__file__).resolve().parent.parent


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
