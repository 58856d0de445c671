"""`dtype: auto` on a CPU: measured once per machine, cached, and followed by every loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ilf import precision
from ilf.models import resolve_dtype


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("ILF_CPU_DTYPE", raising=False)  # measured here, not set
    precision.measured_precision.cache_clear()
    yield tmp_path
    precision.measured_precision.cache_clear()  # later tests read the machine's own cache again


def test_the_choice_is_measured_once_kept_per_machine_and_followed(own_cache: Path) -> None:
    first = precision.cpu_precision()
    assert first.float32_gflops > 0 and first.bfloat16_gflops > 0
    # bfloat16 only where it measured clearly faster
    assert (first.dtype == "bfloat16") == (first.bfloat16_gflops >= precision.MIN_SPEEDUP * first.float32_gflops)
    path = precision.cache_file()
    assert path == own_cache / "ilf" / "cpu-precision.json"
    table = json.loads(path.read_text())
    key = precision.machine_key()
    assert table[key]["dtype"] == first.dtype and "torch " + torch.__version__ in key

    # later processes read the kept answer instead of measuring: flip it and every loader follows
    for kept in ("bfloat16", "float32"):
        table[key]["dtype"] = kept
        path.write_text(json.dumps(table))
        precision.measured_precision.cache_clear()
        assert precision.cpu_precision().dtype == kept
        assert resolve_dtype("auto", torch.device("cpu")) == getattr(torch, kept)
        # training on a CPU keeps float32 whatever was measured; a named dtype is taken as named
        assert resolve_dtype("auto", torch.device("cpu"), for_training=True) == torch.float32
        assert resolve_dtype("float32", torch.device("cpu")) == torch.float32


def test_an_unreadable_cache_is_measured_again_and_rewritten(own_cache: Path) -> None:
    path = precision.cache_file()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    choice = precision.cpu_precision()
    assert json.loads(path.read_text())[precision.machine_key()]["dtype"] == choice.dtype


def test_the_environment_sets_the_choice_without_measuring(own_cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("ILF_CPU_DTYPE", "bfloat16")
    precision.measured_precision.cache_clear()
    assert precision.cpu_precision().describe() == "bfloat16 (set by ILF_CPU_DTYPE)"
    assert resolve_dtype("auto", torch.device("cpu")) == torch.bfloat16
    assert not precision.cache_file().exists()  # nothing measured, nothing kept
    monkeypatch.setenv("ILF_CPU_DTYPE", "float16")
    precision.measured_precision.cache_clear()
    with pytest.raises(ValueError, match="ILF_CPU_DTYPE: expected float32 or bfloat16, got 'float16'"):
        precision.cpu_precision()
