"""Which floating-point type computes fastest on this machine's CPU: measured once, then cached.

CPUs of the same kind differ: one without bfloat16 units ran a 2048² bfloat16 matmul at a fifth
of its float32 speed, another with AVX512-BF16 runs it 2.7x faster than float32. So ``dtype:
auto`` on a CPU does not guess from the model name of the processor: it times one matmul in each
type (about half a second), keeps the answer in ``$XDG_CACHE_HOME/ilf/cpu-precision.json`` keyed
by the processor, its flags and torch's version, and says in the log what it
chose and why. ``ILF_CPU_DTYPE=float32`` (or ``bfloat16``) sets the choice instead of measuring:
the same numbers on every machine (the test suite sets it).

The choice applies to generation and scoring (``dtype: auto`` loads their weights in bfloat16),
whose sampled tokens' log-probabilities stayed within 0.02 of float32's. Training on a CPU stays
in float32 unless asked otherwise: under bfloat16 autocast the facts world's model trained 1.7x
faster per step but ended at a loss of 0.36 against float32's 0.21 after the same 1,500 steps
(the two curves agreed at 400 steps), so the faster type would have changed what the demo shows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

# bfloat16 must win clearly: below this a timing's noise could flip the choice from run to run,
# and float32 is then the exact choice at a similar speed.
MIN_SPEEDUP = 1.3


@dataclass(frozen=True)
class CpuPrecision:
    """The measured choice: ``dtype`` is ``bfloat16`` or ``float32``."""

    dtype: str
    float32_gflops: float
    bfloat16_gflops: float
    machine: str
    measured: str

    def describe(self) -> str:
        if not self.float32_gflops:
            return f"{self.dtype} ({self.measured})"
        return (
            f"{self.dtype} (matmul measured at {self.bfloat16_gflops:.0f} GFLOP/s in bfloat16 and "
            f"{self.float32_gflops:.0f} in float32 on this CPU, {self.measured})"
        )


def cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(root).expanduser() / "ilf" / "cpu-precision.json"


def machine_key() -> str:
    """What the answer depends on: the processor and its flags, and torch (its kernels)."""
    import torch

    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name") and ":" in line:
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and ":" in line:
                flags = line.split(":", 1)[1].strip()
                break
    except OSError:  # not Linux: the processor's name stands for it
        pass
    digest = hashlib.sha256(flags.encode()).hexdigest()[:12]
    return f"{cpu} | flags {digest} | torch {torch.__version__}"


def matmul_gflops(dtype_name: str, size: int = 512, seconds: float = 0.2) -> float:
    """Sustained GFLOP/s of a ``size``-cubed matmul in ``dtype_name``, after a warm-up."""
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    for _ in range(3):
        a @ b
    reps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        reps += 1
    return 2 * size**3 * reps / (time.perf_counter() - started) / 1e9


def measure() -> CpuPrecision:
    fp32 = matmul_gflops("float32")
    bf16 = matmul_gflops("bfloat16")
    dtype = "bfloat16" if bf16 >= MIN_SPEEDUP * fp32 else "float32"
    return CpuPrecision(dtype, round(fp32, 1), round(bf16, 1), machine_key(), time.strftime("%Y-%m-%d"))


def cpu_precision() -> CpuPrecision:
    """``ILF_CPU_DTYPE`` when it is set (read on every call: a stage records what auto became),
    else the cached choice for this machine, measured (and cached) when there is none."""
    forced = os.environ.get("ILF_CPU_DTYPE")
    if forced:
        if forced not in ("float32", "bfloat16"):
            raise ValueError(f"ILF_CPU_DTYPE: expected float32 or bfloat16, got {forced!r}")
        return CpuPrecision(forced, 0.0, 0.0, "", "set by ILF_CPU_DTYPE")
    return measured_precision()


@lru_cache(maxsize=1)
def measured_precision() -> CpuPrecision:
    from ilf.files import atomic_write_json

    path, key = cache_file(), machine_key()
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or unreadable: measured and written anew
        table = {}
    table = table if isinstance(table, dict) else {}
    cached = table.get(key)
    if isinstance(cached, dict):
        try:
            return CpuPrecision(**cached)
        except TypeError:  # written by another version: measure again
            pass
    choice = measure()
    table[key] = asdict(choice)
    try:
        atomic_write_json(path, table)
    except OSError as err:
        log.warning("could not keep the CPU's measured precision in %s (%s); it is measured again next time", path, err)
    log.info("dtype auto on this CPU: %s; cached in %s", choice.describe(), path)
    return choice


def cpu_prefers_bfloat16() -> bool:
    return cpu_precision().dtype == "bfloat16"
