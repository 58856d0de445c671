"""``ilf labelstudio ...``: run a local server, push outputs for annotation, pull annotations."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _data_dir(args: argparse.Namespace) -> Path:
    from ilf.labelstudio.server import default_home

    return Path(args.data_dir) if args.data_dir else default_home() / "data"


def _client(args: argparse.Namespace) -> Any:
    from ilf.labelstudio.client import LabelStudio, resolve_connection

    return LabelStudio(resolve_connection(args.url, _data_dir(args)))


def cmd_install(args: argparse.Namespace) -> int:
    from ilf.labelstudio.server import install_server

    print(f"Label Studio server: {install_server(Path(args.home) if args.home else None)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ilf.labelstudio.server import start_server, write_env_file

    data_dir = _data_dir(args).resolve()
    info, creds = start_server(data_dir, port=args.port, username=args.username, timeout=args.timeout)
    env_file = write_env_file(data_dir, info, creds)
    print(f"Label Studio is running at {info.url} (pid {info.pid}); data in {data_dir}")
    print(f"log in as {creds.username}; password and API key ({creds.masked_token()}) are in {data_dir / 'credentials.json'}")
    print(f"for other shells: source {env_file}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from ilf.labelstudio.server import stop_server

    stopped = stop_server(_data_dir(args))
    print("stopped" if stopped else f"no running server recorded in {_data_dir(args)}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from ilf.labelstudio.sync import build_tasks, push
    from ilf.records import Output, Refinements, Sample, read_records

    samples = read_records(args.samples, Sample)
    outputs = read_records(args.outputs, Output) if args.outputs else None
    systems = [s for s in args.systems.split(",") if s] if args.systems else None
    refinements = read_records(args.refinements, Refinements) if args.refinements else None
    if args.template == "select" and not refinements:
        raise ValueError("--template select needs --refinements (a run's refinements.jsonl)")
    sandbox = None
    if args.template == "code_feedback":
        # the programs run in the sandbox the run config sets (task.options), refused without isolation
        from ilf.config import load_config
        from ilf.execution.programs import check_sandbox, sandbox_for
        from ilf.tasks import get_task

        task = get_task(load_config(args.config, args.overrides).task)
        check_sandbox(task)
        sandbox = sandbox_for(task)
    tasks = build_tasks(
        args.template, samples, outputs, systems, seed=args.seed, model_version=args.model_version, refinements=refinements, sandbox=sandbox
    )
    if not tasks:
        raise ValueError(f"{args.samples}: nothing to push for template {args.template!r} (are the outputs there?)")
    client = _client(args)
    limit = args.max_project_tasks if args.max_project_tasks > 0 else None
    result = push(client, args.project, args.template, tasks, batch_size=args.batch_size, max_project_tasks=limit)
    verb = "created" if result.created_project else "found"
    print(
        f"{verb} project {args.project!r} (id {result.project_id}) at {client.url}: "
        f"imported {result.imported} tasks, {result.already_present} already there"
    )
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from ilf.evaluation import format_table
    from ilf.files import atomic_write_json
    from ilf.labelstudio.sync import pull, ranking_win_rates

    client = _client(args)
    result = pull(client, args.project, args.out, args.template)
    c = result.counts
    print(
        f"{args.out}: {c.new} new records, {c.kept} kept from earlier pulls "
        f"({c.annotations} annotations on {c.tasks} tasks; skipped {c.cancelled} cancelled, {c.empty} empty)"
    )
    if result.template == "ranking":
        table = ranking_win_rates(result.tasks, reference=args.reference)
        print(format_table(table, columns=("win_rate",)))
        if args.table:
            atomic_write_json(
                args.table, {"reference": args.reference, "systems": table, "table": format_table(table, columns=("win_rate",))}
            )
    return 0


def cmd_annotate(args: argparse.Namespace) -> int:
    import os

    from ilf.config import load_config
    from ilf.demo import world
    from ilf.feedback.simulated import world_annotator
    from ilf.labelstudio.annotator import annotate_project
    from ilf.pipeline import RunPaths
    from ilf.records import Sample, read_records

    paths = RunPaths(Path(args.run_dir))
    config = load_config(paths.config)
    samples = {s.id: s for s in read_records(paths.samples, Sample)}
    annotator = world_annotator(config)

    def critic(data: dict[str, Any]) -> str:
        return annotator.critique(world.post_from_sample(samples[data["sample_id"]]), data["output"]).text

    token = os.environ.get("ILF_ANNOTATOR_TOKEN")
    if not token:
        raise SystemExit("ilf labelstudio annotate: set ILF_ANNOTATOR_TOKEN to the annotator's API token")
    url = args.url or _client(args).url
    stats = annotate_project(
        url, token, args.project_id, critic, delay=args.delay, skip_share=args.skip_share, seed=config.seed, limit=args.limit
    )
    print(f"annotated {stats.annotated} tasks, skipped {stats.skipped}")
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    from ilf.labelstudio.webhooks import WebhookReceiver, register

    client = _client(args)
    project = client.find_project(args.project)
    if project is None:
        raise SystemExit(f"{client.url}: no project titled {args.project!r}")
    with WebhookReceiver(port=args.port) as receiver:
        register(client.sdk, project.id, receiver.url)
        print(f"listening on {receiver.url} for annotations in {args.project!r} (Ctrl-C stops)", flush=True)
        try:
            while True:
                if receiver.event.wait(1.0):
                    receiver.event.clear()
                    print(", ".join(f"{action}: {n}" for action, n in sorted(receiver.received.items())), flush=True)
        except KeyboardInterrupt:
            return 0


def add_parser(sub: Any) -> None:
    from ilf.labelstudio.client import TEMPLATES

    parser = sub.add_parser(
        "labelstudio",
        help="Collect feedback, comparisons and rankings with Label Studio.",
        description="Run a local Label Studio, push outputs to it, pull annotations back as records.",
    )
    commands = parser.add_subparsers(dest="labelstudio_command", required=True, metavar="COMMAND")

    def connection_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--url",
            help="Server URL (default LABEL_STUDIO_URL, else the local server of --data-dir). "
            "The API key is read from LABEL_STUDIO_API_KEY or the local server's credentials file.",
        )
        p.add_argument("--data-dir", help="Local server's data directory (default ~/.cache/ilf/labelstudio/data).")

    p = commands.add_parser("install", help="Install the server into its own virtual environment.")
    p.add_argument("--home", help="Where its venv goes (default $ILF_LABEL_STUDIO_HOME or ~/.cache/ilf/labelstudio).")
    p.set_defaults(func=cmd_install)

    p = commands.add_parser("serve", help="Start a local server on 127.0.0.1 (installing it on first use).")
    p.add_argument("--data-dir", help="Server data, credentials and log (default ~/.cache/ilf/labelstudio/data).")
    p.add_argument("--port", type=int, default=8080, help="Port on 127.0.0.1 (default 8080).")
    p.add_argument("--username", help="Admin e-mail for a new data directory (default admin@ilf.local).")
    p.add_argument("--timeout", type=float, default=180.0, help="Seconds to wait for /health.")
    p.set_defaults(func=cmd_serve)

    p = commands.add_parser("stop", help="Stop the local server recorded in the data directory.")
    p.add_argument("--data-dir", help="As given to serve (default ~/.cache/ilf/labelstudio/data).")
    p.set_defaults(func=cmd_stop)

    p = commands.add_parser("push", help="Send samples and outputs as tasks; pushing again imports only new ones.")
    p.add_argument("samples", help="Samples JSONL (e.g. a run's samples.jsonl or eval_samples.jsonl).")
    p.add_argument("--project", required=True, help="Project title; created if missing.")
    p.add_argument("--template", required=True, choices=TEMPLATES, help="Label config.")
    p.add_argument("--refinements", help="select: refinements JSONL (a run's refinements.jsonl); one task per record (default: none).")
    p.add_argument("--outputs", help="Outputs JSONL, e.g. outputs.jsonl or eval_outputs.jsonl (default: each sample's initial output).")
    p.add_argument("--systems", help="Comma-separated systems of --outputs to include; pairwise takes the first two (default: all).")
    p.add_argument("--batch-size", type=int, default=1000, help="Tasks per import request.")
    p.add_argument(
        "--max-project-tasks",
        type=int,
        default=100_000,
        help="Refuse to push into an existing project that already holds more tasks than this (0: no limit).",
    )
    p.add_argument("--seed", type=int, default=0, help="Seed of the order outputs are shown in.")
    p.add_argument(
        "--model-version",
        help="Attach the outputs as predictions of this model (ideal: the editor starts from the output; feedback: recorded per task) "
        "(default: none).",
    )
    p.add_argument(
        "--config",
        help="Run config whose task.options set the sandbox that code_feedback runs programs in (default: the built-in defaults).",
    )
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="Override a config value (repeatable)."
    )
    connection_args(p)
    p.set_defaults(func=cmd_push)

    p = commands.add_parser("pull", help="Export annotations as records; pulling again adds only new ones.")
    p.add_argument("--project", required=True, help="Project title.")
    p.add_argument("--out", required=True, help="Records JSONL: feedback, outputs (ideal), comparisons or selections (select).")
    p.add_argument(
        "--template", choices=TEMPLATES, help="Only for projects not created by ilf (default: the one ilf created the project with)."
    )
    p.add_argument("--reference", help="Ranking projects: report win rates against this system, e.g. reference (default: none).")
    p.add_argument("--table", help="Ranking projects: also write the win-rate table as JSON here (default: none).")
    connection_args(p)
    p.set_defaults(func=cmd_pull)

    p = commands.add_parser(
        "annotate",
        help="The facts world's simulated annotator, as a Label Studio user: critiques a project's tasks over HTTP.",
        description="Takes the project's next task until none is left and submits the world annotator's critique "
        "(its API token in ILF_ANNOTATOR_TOKEN). `ilf loop` starts it when labelstudio.annotator is simulated.",
    )
    p.add_argument("--project-id", type=int, required=True, help="The project's id.")
    p.add_argument("--run-dir", required=True, help="The round's run directory (its config.yaml and samples.jsonl).")
    p.add_argument("--delay", type=float, default=0.0, help="Seconds spent on each task.")
    p.add_argument("--skip-share", type=float, default=0.0, help="Share of tasks skipped.")
    p.add_argument("--limit", type=int, help="Stop after this many tasks (default: every task).")
    connection_args(p)
    p.set_defaults(func=cmd_annotate)

    p = commands.add_parser(
        "listen",
        help="Receive a project's annotation webhooks on 127.0.0.1 and print them (a check of the webhook path).",
    )
    p.add_argument("--project", required=True, help="Project title.")
    p.add_argument("--port", type=int, default=0, help="Port of the receiver (default: a free one).")
    connection_args(p)
    p.set_defaults(func=cmd_listen)
