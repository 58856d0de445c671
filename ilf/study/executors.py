"""Where a study's cells run: one after another in this process, in several local processes
(``study.workers``), as tasks of a Ray cluster (``study.executor: ray``), or as SLURM jobs through
submitit (``study.executor: slurm``).

Cells that share a seed and axis values share that seed's feedback round, so they form a group
that runs in order in one place (the first cell computes the shared stages, the others link them);
groups run side by side. Every executor returns each cell's report row or failure, in the study's
order, and leaves the same run directories: a cell is an ordinary run, so a group that is run again
(a retried task, a rerun study) finds its finished cells and stages up to date."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from ilf.errors import IlfError
from ilf.lifetime import die_with_parent
from ilf.study.cells import Cell, run_cell
from ilf.study.config import RayConfig, SlurmConfig

log = logging.getLogger(__name__)

Result = tuple[dict[str, Any] | None, dict[str, str] | None]  # (report row, failure): one of them
T = TypeVar("T")
R = TypeVar("R")


def groups(todo: list[Cell]) -> list[list[tuple[int, Cell]]]:
    """The cells numbered in the study's order, grouped by seed and axis values."""
    found: dict[str, list[tuple[int, Cell]]] = {}
    for number, cell in enumerate(todo, start=1):
        found.setdefault(json.dumps([cell.seed, cell.axes], sort_keys=True, default=str), []).append((number, cell))
    return list(found.values())


def freeze_imported_modules() -> None:
    """Import the training stack once and move its objects out of the garbage collector's sight.

    Every Trainer.train() starts with a full collection (accelerate's free_memory); with torch,
    transformers and TRL imported that walks ~440k long-lived objects, 0.2-0.3 s a cell, which
    is a tenth of a tiny cell's time. Frozen objects stay alive for the process anyway."""
    import gc

    import transformers  # noqa: F401
    import trl  # noqa: F401

    gc.freeze()


def run_here(todo: list[Cell], run_dir: Path) -> list[Result]:
    freeze_imported_modules()
    return [run_cell(number, len(todo), cell, run_dir) for group in groups(todo) for number, cell in group]


def run_group(group: list[tuple[int, Cell]], total: int, run_dir: Path) -> dict[int, Result]:
    return {number: run_cell(number, total, cell, run_dir) for number, cell in group}


def _use_threads(threads: int) -> None:
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    import torch

    torch.set_num_threads(threads)


# ----- local processes ---------------------------------------------------------------------------


def map_in_processes(function: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``function`` of each item in ``min(workers, len(items))`` local processes, the machine's
    CPU threads shared among them; results in the items' order."""
    import concurrent.futures
    import multiprocessing

    workers = max(1, min(workers, len(items)))
    threads = threads_per_worker(workers)
    # spawn, not fork: a forked copy of a process that has started torch's thread pools can hang
    context = multiprocessing.get_context("spawn")
    level = logging.getLogger("ilf").getEffectiveLevel()
    initargs = (threads, level, os.getpid())
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_start_local_process, initargs=initargs) as pool:
        return list(pool.map(function, items))


def threads_per_worker(workers: int) -> int:
    """The machine's CPU threads shared among ``workers`` local processes, one at least."""
    return max(1, (os.cpu_count() or 1) // workers)


def _start_local_process(threads: int, level: int, parent: int) -> None:
    """A local worker's set-up: it ends when the study's process ends, however that ends (a
    SIGTERM or kill -9 of the parent would otherwise leave it running its cells)."""
    die_with_parent(parent)
    _start_process(threads, level)


def run_in_processes(todo: list[Cell], run_dir: Path, workers: int) -> list[Result]:
    found = groups(todo)
    if len(found) == 1:  # nothing to spread: one group runs here, with every thread
        return run_here(todo, run_dir)
    from ilf.precision import cpu_precision

    cpu_precision()  # measured here once (if not cached yet), not by every worker at once
    workers = min(workers, len(found))
    print(f"running {len(found)} groups of cells in {workers} processes of {threads_per_worker(workers)} CPU threads each", flush=True)
    by_number: dict[int, Result] = {}
    for done in map_in_processes(functools.partial(run_group, total=len(todo), run_dir=run_dir), found, workers):
        by_number.update(done)
    return [by_number[number] for number in sorted(by_number)]


def _start_process(threads: int, level: int) -> None:
    """A worker process's set-up, wherever it runs: ilf's log level, its threads, the imports frozen."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level=logging.WARNING)
    logging.getLogger("ilf").setLevel(level)
    _use_threads(threads)  # Ray and submitit's jobs set their own thread counts unless told
    freeze_imported_modules()


# ----- Ray ---------------------------------------------------------------------------------------


def run_on_ray(todo: list[Cell], run_dir: Path, settings: RayConfig) -> list[Result]:
    """Each group a Ray task with ``settings.cpus_per_cell`` CPUs, retried on another worker when
    its worker dies (the retry resumes at the finished cells and stages). Connects to
    ``settings.address`` or ``RAY_ADDRESS``, else starts a local cluster for the study's length."""
    try:
        import ray
    except ImportError:
        raise IlfError(
            "study.executor ray needs Ray: pip install 'ray[default]' (or, in a clone of ilf, bash scripts/setup-env.sh cluster)"
        ) from None
    address = settings.address or os.environ.get("RAY_ADDRESS")
    started = not ray.is_initialized()
    if started:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=True,
            **({} if address else {"num_cpus": settings.local_cpus or os.cpu_count()}),
        )
    try:
        _check_shared_storage(ray, run_dir)
        found = groups(todo)
        resources = {"num_cpus": settings.cpus_per_cell, "num_gpus": settings.gpus_per_cell}
        task = ray.remote(**resources, max_retries=settings.max_retries)(_ray_group)
        level = logging.getLogger("ilf").getEffectiveLevel()
        where = address or "a local Ray cluster"
        gpus = f" and {settings.gpus_per_cell:g} GPUs" if settings.gpus_per_cell else ""
        print(f"running {len(found)} groups of cells as Ray tasks on {where}, {settings.cpus_per_cell} CPUs{gpus} each", flush=True)
        refs = [task.remote(group, len(todo), str(run_dir), settings.cpus_per_cell, level) for group in found]
        by_number: dict[int, Result] = {}
        for result in ray.get(refs):
            by_number.update(result)
        return [by_number[number] for number in sorted(by_number)]
    finally:
        if started:
            ray.shutdown()


def _ray_group(group: list[tuple[int, Cell]], total: int, run_dir: str, threads: int, level: int) -> dict[int, Result]:
    import socket

    _start_process(threads, level)
    print(f"cells {group[0][0]}-{group[-1][0]} on {socket.gethostname()} (pid {os.getpid()})", flush=True)
    return run_group(group, total, Path(run_dir))


def _read_probe(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _check_shared_storage(ray: Any, run_dir: Path) -> None:
    """Cells write their run directories where the driver reads them: a task on the cluster must
    see a file the driver just wrote under the run directory, else nothing it computed would reach
    the report."""
    probe = run_dir.resolve() / f".ray-probe-{uuid.uuid4().hex}"
    token = uuid.uuid4().hex
    probe.write_text(token)
    try:
        seen = ray.get(ray.remote(num_cpus=0)(_read_probe).remote(str(probe)))
    finally:
        probe.unlink(missing_ok=True)
    if seen != token:
        raise IlfError(
            f"the study's run directory {run_dir.resolve()} is not visible from the Ray cluster's workers: "
            "put it on storage every node mounts at the same path (NFS, a shared file system) and rerun"
        )


# ----- SLURM, through submitit ---------------------------------------------------------------------


def run_on_slurm(todo: list[Cell], run_dir: Path, settings: SlurmConfig) -> list[Result]:
    """Each group a job (submitit: SLURM where ``sbatch`` is found, else local processes), with
    its logs in ``RUN_DIR/.slurm/``. A job that ends without a result (cancelled, timed out, its
    node lost) fails its cells with the job's error; the same command resubmits only what is
    unfinished, and each cell resumes at its finished stages."""
    try:
        import submitit
    except ImportError:
        raise IlfError(
            "study.executor slurm needs submitit: pip install submitit (or, in a clone of ilf, bash scripts/setup-env.sh cluster)"
        ) from None
    executor = submitit.AutoExecutor(folder=run_dir / ".slurm" / "%j", cluster=None if settings.cluster == "auto" else "local")
    parameters: dict[str, Any] = {"timeout_min": settings.time_min, "cpus_per_task": settings.cpus_per_task, "name": "ilf-cells"}
    if settings.gpus_per_node:
        parameters["gpus_per_node"] = settings.gpus_per_node
    if settings.mem_gb is not None:
        parameters["mem_gb"] = settings.mem_gb
    if settings.partition:
        parameters["slurm_partition"] = settings.partition
    if settings.additional:
        parameters["slurm_additional_parameters"] = dict(settings.additional)
    executor.update_parameters(**parameters)
    found = groups(todo)
    level = logging.getLogger("ilf").getEffectiveLevel()
    jobs = [executor.submit(_job_group, group, len(todo), str(run_dir), settings.cpus_per_task, level) for group in found]
    print(
        f"submitted {len(jobs)} jobs ({executor.cluster}): {', '.join(str(job.job_id) for job in jobs)}; logs in {run_dir / '.slurm'}",
        flush=True,
    )
    by_number: dict[int, Result] = {}
    with _cancelled_when_interrupted(jobs):
        _wait_for_jobs(jobs, found, by_number)
    return [by_number[number] for number in sorted(by_number)]


@contextlib.contextmanager
def _cancelled_when_interrupted(jobs: list[Any]) -> Iterator[None]:
    """A driver stopped by Ctrl-C or SIGTERM cancels the jobs it submitted that have not ended
    (scancel, or the local process killed), instead of leaving them to run for nobody."""
    import signal
    import threading

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    here = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if here else None
    try:
        yield
    except BaseException:
        unfinished = [job for job in jobs if not job.done()]
        for job in unfinished:
            job.cancel(check=False)
        print(f"cancelled {len(unfinished)} unfinished job(s) of {len(jobs)}", file=sys.stderr, flush=True)
        raise
    finally:
        if here:
            signal.signal(signal.SIGTERM, previous)


def _wait_for_jobs(jobs: list[Any], found: list[list[tuple[int, Cell]]], by_number: dict[int, Result]) -> None:
    for job, group in zip(jobs, found):
        try:
            by_number.update(job.result())
        except Exception as err:  # noqa: BLE001 - a lost job fails its cells; the other jobs' cells still count
            last = (str(err).strip().splitlines() or [type(err).__name__])[-1]
            for number, cell in group:
                by_number.setdefault(
                    number, (None, {"cell": cell.name, "error": f"job {job.job_id}: {last}", "traceback": str(job.paths.stderr)})
                )


def _job_group(group: list[tuple[int, Cell]], total: int, run_dir: str, threads: int, level: int) -> dict[int, Result]:
    _start_process(threads, level)
    return run_group(group, total, Path(run_dir))


__all__ = ["groups", "run_here", "run_in_processes", "run_on_ray", "run_on_slurm", "freeze_imported_modules"]
