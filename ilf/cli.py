"""The ``ilf`` command: the whole round (``ilf run``) and each stage alone, over files."""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

# Before any Hugging Face import: no usage pings, no tokenizer thread warnings after fork.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ilf import __version__  # noqa: E402
from ilf.config import ConfigError, RunConfig, dump_config, field_help, load_config, read_config_file, to_plain, where_set  # noqa: E402
from ilf.errors import IlfError  # noqa: E402
from ilf.records import Output, Refinements, Sample, read_records  # noqa: E402
from ilf.registry import ALL, TASKS, Registry, failed_packages  # noqa: E402
from ilf.schema import SchemaError  # noqa: E402

log = logging.getLogger("ilf")

# The pipeline, the study and the trainers import torch and transformers (seconds): the commands
# that need them import them, so `ilf --help`, `ilf config` and `ilf labelstudio ...` start at once.


Arguments = Callable[[argparse.ArgumentParser], None]
COMMANDS: list[tuple[str, Callable[[argparse.Namespace], int], Arguments, dict[str, str]]] = []


def command(name: str, arguments: Arguments, help: str, description: str | None = None) -> Callable[[Any], Any]:
    """Declare ``ilf NAME``: ``arguments(parser)`` adds its arguments, written beside the function
    that runs it; ``build_parser`` adds the commands in the order they are declared."""

    def register(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS.append((name, func, arguments, {"help": help, **({"description": description} if description else {})}))
        return func

    return register


def _add_executor_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor",
        choices=("local", "ray", "slurm"),
        help="Where cells run, in place of study.executor: local processes (study.workers), tasks of a Ray cluster "
        "(study.ray.address or RAY_ADDRESS, else a local one), or SLURM jobs through submitit (study.slurm) "
        "(default: from the config).",
    )


def _add_config_args(parser: argparse.ArgumentParser, required: bool = False) -> None:
    if required:
        parser.add_argument("config", help="YAML run config (see experiments/).")
    else:
        parser.add_argument("--config", help="YAML run config; defaults apply where it is silent (default: the built-in defaults).")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Override a config value, e.g. --set data.limit=20 --set refine.num_candidates=3 (repeatable).",
    )


def _config(args: argparse.Namespace) -> RunConfig:
    return load_config(getattr(args, "config", None), args.overrides)


# A loader's or a task's error that starts with the key it is about ("data.fields: unknown role x")
_KEY_FIRST = re.compile(r"^((?:data|task)\.[\w.]+): (.+)$", re.S)


def check_inputs(config: RunConfig, source: str | None, overrides: Sequence[str] = ()) -> list[str]:
    """What a config's keys point at, checked without running a stage: the files of the training
    and evaluation splits exist, the first row of each has the fields ``data.fields`` maps (the
    loader converts it), and the task builds its prompts from that row (a template that names a
    field no sample has fails there, as it would in the run). A problem raises an error naming the
    file, line and field; what cannot be checked without running (a hub dataset, your own loader)
    is returned, one line each."""
    import dataclasses

    from ilf.data import NeedsDownload, first_sample
    from ilf.registry import LOADERS
    from ilf.tasks import get_task
    from ilf.tasks.base import TemplateFieldError

    def error(key: str, problem: str, at: str | None = None) -> ConfigError:
        """The problem of ``key``, named where the config sets ``at`` (default the key itself)."""
        at = at or key
        set_keys = [o.split("=", 1)[0].strip() for o in overrides]
        if any(at == k or at.startswith(k + ".") or k.startswith(at + ".") for k in set_keys):
            return ConfigError("--set", None, key, problem)
        found = where_set(source, at) if source else None
        return ConfigError(found[0] if found else source or "<defaults>", found[1] if found else None, key, problem)

    def keyed(err: Exception, key: str) -> ConfigError:
        """The error of a loader or a task, named by the key its message starts with (else ``key``)."""
        said = _KEY_FIRST.match(str(err))
        return error(said[1], said[2]) if said else error(key, str(err))

    notes: list[str] = []
    downloads: dict[tuple[str, str], list[str]] = {}  # (key, what would be downloaded): its splits
    firsts: dict[str, tuple[Sample, str]] = {}  # "train" or "eval": the split's first sample, and where it came from
    if not LOADERS.is_builtin(config.data.loader):
        notes.append(f"data.loader {config.data.loader}: your own loader's files are read when the data stage runs")
    else:
        eval_key = "data.eval_path" if config.data.eval_path else "data.path"
        for role, split, key, path in (
            ("train", config.data.split, "data.path", None),
            ("eval", config.data.eval_split, eval_key, config.data.eval_path),
        ):
            try:
                sample, origin = first_sample(config, split, path)
            except NeedsDownload as err:
                downloads.setdefault((key, str(err)), []).append(split)
                continue
            except FileNotFoundError as err:
                raise error(key, f"{err} (the {split} split)") from None
            except SchemaError:
                raise  # a row's problem: it names the data file, line and field
            except ValueError as err:
                raise keyed(err, "data") from None
            if sample is not None:
                firsts[role] = (sample, origin)
    for (key, what), splits in downloads.items():
        splits = list(dict.fromkeys(splits))
        said = f"{' and '.join(splits)} splits are" if len(splits) > 1 else f"{splits[0]} split is"
        notes.append(f"{key}: {what}: its {said} read when the data stage downloads it")
    try:
        task = get_task(config.task)
    except (TypeError, ValueError) as err:
        raise keyed(err, "task.options") from None
    if getattr(task, "include_test_output", False):  # the code task would run the program to fill {test_output}: no program runs here
        task = dataclasses.replace(task, include_test_output=False)
    prompts: dict[str, list[Callable[[Sample], str]]] = {  # held-out samples get initial prompts only
        "train": [
            task.initial_prompt,
            lambda s: task.refine_prompt(s, "output", "feedback"),
            lambda s: task.refine_prompt(s, "output", None),
        ],
        "eval": [task.initial_prompt],
    }
    for role, (sample, origin) in firsts.items():
        for prompt in prompts[role]:
            try:
                prompt(sample)
            except TemplateFieldError as err:
                own = err.template in config.task.options
                added = sorted(set(err.known) - set(sample.inputs))
                problem = (
                    f"{'' if own else f'task {config.task.name} by default '}uses {{{err.field}}}, which the samples of {origin} do not "
                    f"have (they have: {', '.join(sorted(sample.inputs)) or 'no input fields'}; the task adds: {', '.join(added)})"
                )
                raise error(f"task.options.{err.template}", problem, None if own else "task.name") from None
            except Exception as err:  # noqa: BLE001 - a task's own prompt code: it would fail the same way in the run
                raise error(
                    "task.name", f"building a prompt for the first sample of {origin} failed: {type(err).__name__}: {err}"
                ) from None
    return notes


def _run_arguments(p: argparse.ArgumentParser) -> None:
    _add_config_args(p, required=True)
    p.add_argument("--run-dir", help="Where the stages write (default runs/<name>).")
    p.add_argument(
        "--from",
        dest="from_stage",
        metavar="STAGE",
        help="Recompute this stage and every later one, as `ilf status` lists them (default: only stages out of date).",
    )
    p.add_argument("--until", metavar="STAGE", help="Stop after this stage (default: the last).")


@command(
    "run",
    _run_arguments,
    help="Run one ILF round from a config, stage by stage, resumably.",
    description="Run the stages data, outputs, feedback, refine, select, finetune and evaluate "
    "over a run directory. Stages whose outputs exist for the same config are skipped.",
)
def cmd_run(args: argparse.Namespace) -> int:
    from ilf.layout import RunPaths
    from ilf.results import RunResult
    from ilf.rounds import open_run

    config = _config(args)
    _check(config, args.config, args.overrides)  # before any stage: a missing file or field is named now, not after the first stages ran
    run_dir = Path(args.run_dir or Path("runs") / config.name)
    open_run(config, run_dir).run(from_stage=args.from_stage, until=args.until)
    print(f"run directory: {run_dir}")
    metrics_path = RunPaths(run_dir).metrics
    if metrics_path.exists() and (args.until in (None, "evaluate")):
        result = RunResult.read(metrics_path)
        print(result.table)
        if result.cost_line():
            print(result.cost_line())
        if result.rounds_table is not None:
            print(f"\nprimary system ({result.primary}) by round:\n{result.rounds_table}")
    return 0


def _loop_arguments(p: argparse.ArgumentParser) -> None:
    _add_config_args(p, required=True)
    p.add_argument("--run-dir", help="Where the rounds write (default runs/<name>).")


@command(
    "loop",
    _loop_arguments,
    help="ILF rounds with people in Label Studio: push, wait for annotations, train, next round; resumable.",
    description="Each round's policy writes outputs for fresh samples, which go to the round's Label Studio project; "
    "the loop waits for labelstudio.min_annotations (or labelstudio.deadline), pulls the critiques, refines, selects, "
    "fine-tunes and evaluates, and starts the next round from the new policy. Stop it anywhere and rerun the same "
    "command to resume. With no server configured it starts a local one.",
)
def cmd_loop(args: argparse.Namespace) -> int:
    from ilf.commands.loop import run_loop

    config = _config(args)
    _check(config, args.config, args.overrides)
    run_dir = Path(args.run_dir or Path("runs") / config.name)
    table = run_loop(config, run_dir)
    print(f"run directory: {run_dir}\n")
    print(table)
    return 0


def _status_arguments(p: argparse.ArgumentParser) -> None:
    _add_config_args(p, required=True)
    p.add_argument("--run-dir", help="The run directory (default runs/<name>).")
    p.add_argument("--profile", action="store_true", help="Of a study's folder: seconds and peak memory by stage, the costliest first.")


@command(
    "status",
    _status_arguments,
    help="Show which stages of a run directory are up to date for a config, and why the others would rerun "
    "(the first thing each read that changed), or (given a study's folder) which cells are done, running, failed or waiting.",
)
def cmd_status(args: argparse.Namespace) -> int:
    from ilf.study.status import cell_states, format_profile, format_states, is_study_dir, stage_profile

    if args.config and is_study_dir(args.config):  # a study's folder: where each cell stands
        print(format_states(cell_states(Path(args.config))))
        if args.profile:
            print("\n" + format_profile(stage_profile(Path(args.config))))
        return 0
    from ilf.rounds import open_run

    config = _config(args)
    for stage, state in open_run(config, args.run_dir or Path("runs") / config.name).status(reasons=True).items():
        print(f"{stage:10s} {state}")
    return 0


def _refine_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", required=True, help="Samples JSONL.")
    p.add_argument("--feedback", required=True, help="Feedback JSONL.")
    p.add_argument("--outputs", help="Outputs JSONL the feedback is about (default: each sample's initial_output).")
    p.add_argument("--out", required=True, help="Refinements JSONL to write.")
    _add_config_args(p)


@command(
    "refine",
    _refine_arguments,
    help="Generate N refinements per feedback record.",
    description="Read samples and feedback JSONL, write one refinements record per feedback record.",
)
def cmd_refine(args: argparse.Namespace) -> int:
    from ilf.pipeline import stage_over_files

    config = _config(args)
    samples = read_records(args.samples, Sample)
    if args.outputs:
        outputs: Path | list[Output] = Path(args.outputs)
    else:
        outputs = [Output(sample_id=s.id, text=s.initial_output, system="dataset") for s in samples if s.initial_output]
    out = Path(args.out)
    stats = stage_over_files(
        config,
        "refine",
        {"samples": Path(args.samples), "feedback": Path(args.feedback), "outputs": outputs},
        {"refinements": out},
        _work_dir(out),
    )
    records = read_records(out, Refinements)
    print(f"wrote {len(records)} refinement sets to {out} ({stats['outputs']} new candidates)")
    return 0


def _work_dir(out: Path) -> Path:
    """Where a stage run over files keeps its run directory (and journal) until it succeeds: beside
    its output, one per rank of a launcher."""
    rank = os.environ.get("RANK", "0")
    return out.with_name(f".{out.name}.run" + (f"-rank{rank}" if rank != "0" else ""))


def _select_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", required=True, help="Samples JSONL.")
    p.add_argument("--refinements", required=True, help="Refinements JSONL from `ilf refine`.")
    p.add_argument("--out", required=True, help="Selections JSONL to write.")
    p.add_argument(
        "--method",
        metavar="SELECTOR",
        # not listed here: reading the registry's names would cost every command's start-up
        help="Override selection.method: a registered selector (`ilf plugins selector` lists them) or module.path:Class "
        "(default: from the config).",
    )
    _add_config_args(p)


@command("select", _select_arguments, help="Score every refinement and pick one per sample.")
def cmd_select(args: argparse.Namespace) -> int:
    from ilf.pipeline import stage_over_files

    config = _config(args)
    if args.method:
        config.selection.method = args.method
    out = Path(args.out)
    stats = stage_over_files(
        config, "select", {"samples": Path(args.samples), "refinements": Path(args.refinements)}, {"selected": out}, _work_dir(out)
    )
    print(f"wrote {stats['selections']} selections ({config.selection.method}) to {args.out}")
    return 0


def _finetune_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", required=True, help="Samples JSONL (their prompts are the training inputs).")
    p.add_argument("--selected", help="Selections JSONL from `ilf select`; needed for the target 'selected' (default: none).")
    p.add_argument("--target", choices=("selected", "initial", "reference"), help="Override finetune.target (default: from the config).")
    p.add_argument("--out", required=True, help="Directory for the fine-tuned model and tokenizer.")
    _add_config_args(p)


@command("finetune", _finetune_arguments, help="Fine-tune the policy on selections, initial outputs or references.")
def cmd_finetune(args: argparse.Namespace) -> int:
    import dataclasses

    from ilf.pipeline import stage_over_files

    config = _config(args)
    target = args.target or config.finetune.target
    if target == "selected" and not args.selected:
        raise ValueError("--selected is required when the fine-tuning target is 'selected' (or pass --target initial|reference)")
    # the method whose finetune stage trains on that target (a run of it trains exactly so)
    method = {"selected": "ilf", "initial": "sft_initial", "reference": "sft_reference"}[target]
    config = dataclasses.replace(config, method=method, finetune=dataclasses.replace(config.finetune, target=target, train_samples=None))
    samples = read_records(args.samples, Sample)
    inputs: dict[str, Path | list[Any]] = {"samples": Path(args.samples)}
    if args.selected:
        inputs["selected"] = Path(args.selected)
    if target == "initial":  # the outputs critiqued: each sample's initial output
        inputs["outputs"] = [Output(sample_id=s.id, text=s.initial_output, system="dataset") for s in samples if s.initial_output]
    out = Path(args.out)
    metrics = stage_over_files(config, "finetune", inputs, {"model": out}, _work_dir(out))
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under a multi-process launcher, rank 0 speaks for all
    print(f"trained on {metrics['pairs']} pairs for {metrics['steps']} steps (train loss {metrics['train_loss']:.4f}); saved to {args.out}")
    return 0


def _evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", help="Held-out samples JSONL, in place of the config's data.eval_split (default: from the config).")
    p.add_argument("--model", help="Model path or hub id, in place of the config's policy (default: from the config).")
    p.add_argument(
        "--outputs",
        metavar="FILE|references",
        help="Score these outputs instead of generating: an outputs JSONL, or 'references' (default: none, the model generates).",
    )
    p.add_argument("--system", default="model", help="Name of the generating system in the table.")
    p.add_argument("--out", required=True, help="metrics.json to write.")
    p.add_argument(
        "--outputs-out", help="Also write the scored outputs here, as JSONL; pass@k adds each program's verdict (default: none)."
    )
    _add_config_args(p)


@command(
    "evaluate",
    _evaluate_arguments,
    help="Score a model's outputs on held-out samples, or score outputs from a file, or the references.",
    description="Generate with a model (the config's policy or --model) and score the outputs with evaluation.metrics; "
    "or, with --outputs, score outputs that already exist, with no model: an outputs JSONL (one row per system in "
    "it), or 'references' (each sample's first reference: the sanity check of a dataset and its metrics, e.g. "
    "HumanEval's canonical solutions must give pass@1 = 1.0).",
)
def cmd_evaluate(args: argparse.Namespace) -> int:
    """The evaluate stage over files: of a ``before`` run whose policy is ``--model`` (or the
    config's), or of an ``outputs`` run scoring ``--outputs``, on ``--samples`` as the held-out split."""
    import dataclasses

    from ilf.errors import ModelLoadError
    from ilf.pipeline import stage_over_files
    from ilf.results import RunResult

    config = _config(args)
    if args.outputs and args.model:
        raise ValueError("--outputs scores outputs that exist; --model generates new ones: pass one of them")
    if args.samples:
        samples: Path | list[Sample] = Path(args.samples)
    else:
        from ilf.data import load_eval

        samples = load_eval(config).samples
    if args.outputs:
        source = args.outputs if args.outputs == "references" else str(Path(args.outputs).resolve())
        config = dataclasses.replace(config, method="outputs", method_options={**config.method_options, "outputs": {"source": source}})
    else:
        model = dataclasses.replace(config.policy, name_or_path=args.model, backend="local", adapter=None) if args.model else config.policy
        config = dataclasses.replace(
            config, method="before", policy=model, method_options={**config.method_options, "before": {"system": args.system}}
        )
    config = dataclasses.replace(config, finetune=dataclasses.replace(config.finetune, train_samples=None))
    out = Path(args.out)
    produced = {"metrics": out, **({"eval_outputs": Path(args.outputs_out)} if args.outputs_out else {})}
    # no feedback round over files: the run's training samples are none
    try:
        stage_over_files(config, "evaluate", {"eval_samples": samples, "samples": []}, produced, _work_dir(out))
    except ModelLoadError as err:  # the model came from --model, not from the config's policy
        raise ModelLoadError(str(err).replace("policy.name_or_path: ", "--model: ", 1) if args.model else str(err)) from err
    result = RunResult.read(out)
    count = len(read_records(samples, Sample)) if isinstance(samples, Path) else len(samples)
    for system, row in result.systems.items():
        missing = row.get("samples_without_output", 0)
        if missing:
            what = "reference" if args.outputs == "references" else "output"
            print(f"{system}: {missing} of {count} samples have no {what}; every metric scores the other {count - missing}")
    print(result.table)
    return 0


def _study_arguments(p: argparse.ArgumentParser) -> None:
    _add_config_args(p, required=True)
    p.add_argument("--run-dir", help="Where the cells and the report go (default runs/<config name>).")
    _add_executor_arg(p)


@command(
    "compare",
    _study_arguments,
    help="ILF against the ranking-RLHF baselines: a study preset (same as `ilf study`).",
    description="Run a compare study config (experiments/compare_offline.yaml, experiments/compare_slf5k_100.yaml): "
    "ILF, the SFT baselines, reward-model best-of-N, DPO and RLOO on the same samples and evaluation.",
)
@command(
    "study",
    _study_arguments,
    help="A sweep of runs: methods x sizes x seeds x any key, with one report.",
    description="Run every cell of a study config (a run config plus a study section) as an ordinary run "
    "directory under RUN_DIR/cells, sharing a stage where everything it read is the same, and write report.md, "
    "report.png, cells.csv and cells.json. Rerunning resumes where it stopped.",
)
def cmd_study(args: argparse.Namespace) -> int:
    from ilf.study import run_study

    run_dir = Path(args.run_dir or Path("runs") / Path(args.config).stem)
    overrides = [*args.overrides, *([f"study.executor={args.executor}"] if getattr(args, "executor", None) else [])]
    result = run_study(args.config, run_dir, overrides)
    from ilf.commands import ranking_tasks

    ranking_tasks.write_ranking_tasks(result["cells"], run_dir / ranking_tasks.FILE)  # for a human evaluation of the same systems
    print(result["report"])
    print(f"report: {run_dir / 'report.md'} (plot: report.png, every cell: cells.csv, cells.json; runs under {run_dir / 'cells'})")
    if result["failed"]:
        print(
            f"ilf: {len(result['failed'])} runs of the study failed (listed in the report); rerun the same command to retry them",
            file=sys.stderr,
        )
        return 1
    return 0


def packaged_studies() -> dict[str, str]:
    """The study configs shipped in ilf/studies, by name, with the first line of their comment."""
    from importlib.resources import files

    found = {}
    for entry in sorted(files("ilf.studies").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            first = entry.read_text().split("\n", 1)[0].lstrip("# ").strip()
            found[entry.name[: -len(".yaml")]] = first
    return found


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "study",
        nargs="?",
        default="demo",
        help=f"A packaged study (ilf/studies): {', '.join(packaged_studies())}.",
    )
    p.add_argument(
        "--run-dir",
        help="Where the cells and report are written (default runs/<study>); the world model is cached beside it in world-cache/.",
    )
    p.add_argument("--seeds", type=int, help="Number of seeds (default 3).")
    p.add_argument(
        "--smoke",
        "--quick",
        dest="quick",
        action="store_true",
        help="A smoke test, not a demo: every stage of both worlds runs on one seed and 100 samples with a 120-step world "
        "model, which states no fact, so its tables are zeros (--quick is its old name).",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Override a value of the demo's study config (study.* or any run key).",
    )
    _add_executor_arg(p)


@command(
    "demo",
    _demo_arguments,
    help="The offline controlled study: ILF against its baselines in minutes on a laptop.",
    description="A packaged study of the facts world's plug-ins: train a tiny policy, refiner and judge from scratch "
    "(cached), run ILF at 100 and 300 feedback samples against its baselines over 3 seeds in the cued and the "
    "hidden-preference world, print the report. Other packaged studies: rounds (ILF over three rounds), candidates "
    "(selection among N = 1..10 refinements), weak_refiner (a refiner after fewer pre-training steps), peers (ILF beside "
    "SDFT, SDPO and ranking RLHF at equal annotator time), peers_tuning (their settings, on development seeds and "
    "validation posts), code (ILF for code in the program world: programs run in the sandbox, a simulated reviewer, "
    "pass@1 and pass@10).",
)
def cmd_demo(args: argparse.Namespace) -> int:
    from importlib.resources import files

    name = "demo_quick" if args.quick else args.study
    studies = packaged_studies()
    if name not in studies:
        raise IlfError(f"no packaged study {name!r}; there are: {', '.join(studies)}")
    run_dir = Path(args.run_dir or Path("runs") / name)
    config = files("ilf.studies") / f"{name}.yaml"
    # one cache beside the run directories, so every packaged study reuses the world model it shares
    cache = run_dir.resolve().parent / "world-cache"
    overrides = [f"pretraining.cache_dir={cache}"]
    if "cache_dir" in ((read_config_file(str(config)).get("task") or {}).get("options") or {}):
        overrides.append(f"task.options.cache_dir={cache / 'executions'}")  # the code study's verdicts, kept beside it
    overrides += args.overrides
    args.run_dir = str(run_dir)
    if args.seeds is not None:
        overrides.append(f"study.seeds={list(range(args.seeds))}")
    args.config, args.overrides = str(config), overrides
    return cmd_study(args)


def _plugins_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "kind",
        nargs="?",
        help=f"Only this kind ({', '.join(r.kind.replace(' ', '_') for r in ALL)}), with each plug-in's options; or one plug-in's "
        "name (default: every kind, without options).",
    )


@command("plugins", _plugins_arguments, help="List the registered plug-ins of every kind with their help.")
def cmd_plugins(args: argparse.Namespace) -> int:
    kinds = {registry.kind.replace(" ", "_"): registry for registry in ALL}
    wanted = args.kind
    if wanted and wanted not in kinds:  # a plug-in's name: its help and its options
        found = [registry for registry in ALL if wanted in registry.names()]
        if not found:
            names = sorted({name for registry in ALL for name in registry.names()})
            close = difflib.get_close_matches(wanted, [*kinds, *names], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            failed = "".join(f"; {failure}" for failure in failed_packages())  # the name may have been one of theirs
            raise IlfError(f"no kind or plug-in named {wanted!r}{hint}{failed}; kinds: {', '.join(kinds)}")
        for registry in found:
            print(f"{wanted} ({registry.kind}, {registry.config_key}): {registry.help(wanted)}")
            _print_options(registry, wanted, indent="  ")
        return 0
    for key, registry in kinds.items():
        if wanted and key != wanted:
            continue
        print(f"{registry.kind}s ({registry.config_key}):")
        for name in registry.names():
            print(f"  {name:20s} {registry.help(name)}")
            if wanted:  # one kind: each plug-in's options too (this imports the kind's modules)
                _print_options(registry, name, indent="      ")
        print()
    for failure in failed_packages():  # listed, not only warned about: a missing plug-in is explained here
        print(f"not loaded: {failure}")
    if not wanted:
        print("ilf plugins KIND (or NAME) also lists options.")
    return 0


def _print_options(registry: Registry[Any], name: str, indent: str) -> None:
    from ilf.plugin import options_help

    for key, default, help_text in options_help(registry, name)[1]:
        print(f"{indent}{key} ({default}): {help_text}")


def _config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="YAML run config (default: the built-in defaults).")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="Override a value.")
    p.add_argument(
        "--fields",
        action="store_true",
        help="List every config field, its default and its meaning; with a config, the options of the plug-ins it names.",
    )


@command(
    "config",
    _config_arguments,
    help="Print a resolved config, or every config field with its help.",
    description="Print a config with every default filled in, after checking what it can without running: every key "
    "and plug-in name, the data files of both splits, the fields data.fields maps (in each file's first row), and the "
    "task's prompts, built from each file's first row. On a study config, every cell's config. A hub dataset is checked "
    "when the data stage downloads it.",
)
def cmd_config(args: argparse.Namespace) -> int:
    if args.fields:
        from ilf.plugin import named_plugins, options_help
        from ilf.study.config import StudyConfig  # light: the study section alone

        rows = [*field_help(), *field_help(StudyConfig, "study.")]
        if args.config is not None:  # the options of the plug-ins this config names
            config = _config(args)
            plugins = [*named_plugins(config), (TASKS, config.task.name)]
        else:  # every plug-in's (their modules imported)
            plugins = [(registry, name) for registry in ALL for name in registry.names()]
        for registry, name in plugins:
            where, options = options_help(registry, name)
            # task options share one key for every task: say whose they are
            rows += [(key, default, f"{text} [task {name}]") for key, default, text in options] if where == "task.options" else options
        for key, default, help_text in rows:
            print(f"{key:42s} {default:24s} {help_text}")
        return 0
    if args.config is not None and "study" in read_config_file(args.config):
        return _check_study(args)
    config = _config(args)
    _check(config, args.config, args.overrides)
    print(dump_config(config), end="")
    return 0


def _check_study(args: argparse.Namespace) -> int:
    """``ilf config`` on a study config: the study section, every cell's config (built as ``ilf
    study`` builds it) and the inputs of each distinct data and task setting, checked; the study
    section and its cells printed."""
    import json

    import yaml

    from ilf.study.cells import cells
    from ilf.study.config import load_study

    study, base, source = load_study(args.config, args.overrides)
    todo = cells(study, base, source)
    run_overrides = [text for text in args.overrides if not text.startswith("study.")]
    checked = set()
    for cell in todo:  # the data and templates of cells that read the same ones are checked once
        key = json.dumps([to_plain(cell.config.data), to_plain(cell.config.task)], sort_keys=True, default=str)
        if key not in checked:
            checked.add(key)
            try:
                _check(cell.config, args.config, run_overrides)
            except ConfigError as err:  # a key the cell's variant sets is the variant's, not the base's line
                variant = study.variants.get(cell.method)
                if variant is None or not any(text.partition("=")[0].strip() == err.field for text in variant.set):
                    raise
                raise ConfigError(args.config, None, f"study.variants.{cell.method}.set", f"{err.field}: {err.problem}") from None
    print(yaml.safe_dump({"study": to_plain(study)}, sort_keys=False, allow_unicode=True), end="")
    print(f"# {len(todo)} cells, each config checked ({len(checked)} data and task settings read):")
    for cell in todo:
        print(f"#   {cell.name}")
    return 0


def _check(config: RunConfig, source: str | None, overrides: Sequence[str]) -> None:
    """``check_inputs`` for a command's config; what it could not check is said in a log line each."""
    for note in check_inputs(config, source, overrides):
        log.info("not checked yet: %s", note)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ilf",
        description="Imitation Learning from Language Feedback: refine outputs with free-text feedback, "
        "select the refinement that best incorporates it, fine-tune on the selections.",
    )
    parser.add_argument("--version", action="version", version=f"ilf {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log debug messages.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, func, arguments, texts in COMMANDS:  # in the order this module declares them
        p = sub.add_parser(name, **texts)
        arguments(p)
        p.set_defaults(func=func)
    from ilf.commands.labelstudio import add_parser as add_labelstudio_parser

    add_labelstudio_parser(sub)  # ilf labelstudio serve|push|pull|...: declared beside those commands
    return parser


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level=logging.WARNING)
    logging.getLogger("ilf").setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("transformers", "datasets", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR if not verbose else logging.INFO)


def _quiet_hugging_face() -> None:
    """No info logs or progress bars from transformers and datasets: through the variables they
    read when imported, so a command that needs neither does not import them (seconds) to say so."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # imported already (a test, a notebook): the variables come too late
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    if not args.verbose:
        _quiet_hugging_face()
    try:
        return args.func(args)
    except (SchemaError, ValueError, FileNotFoundError, IlfError) as err:
        # Bad input gets one line naming what is wrong; anything else keeps its traceback.
        print(f"ilf: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
