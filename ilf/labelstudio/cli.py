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
    from ilf.records import Output, Sample, read_records

    samples = read_records(args.samples, Sample)
    outputs = read_records(args.outputs, Output) if args.outputs else None
    systems = [s for s in args.systems.split(",") if s] if args.systems else None
    tasks = build_tasks(args.template, samples, outputs, systems, seed=args.seed)
    if not tasks:
        raise ValueError(f"{args.samples}: nothing to push for template {args.template!r} (are the outputs there?)")
    client = _client(args)
    result = push(client, args.project, args.template, tasks, batch_size=args.batch_size)
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


def add_parser(sub: Any) -> None:
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
    p.add_argument("--data-dir", help="As given to serve.")
    p.set_defaults(func=cmd_stop)

    p = commands.add_parser("push", help="Send samples and outputs as tasks; pushing again imports only new ones.")
    p.add_argument("samples", help="Samples JSONL (e.g. a run's samples.jsonl or eval_samples.jsonl).")
    p.add_argument("--project", required=True, help="Project title; created if missing.")
    p.add_argument("--template", required=True, choices=("feedback", "ideal", "pairwise", "ranking"), help="Label config.")
    p.add_argument("--outputs", help="Outputs JSONL (e.g. outputs.jsonl, eval_outputs.jsonl); default each sample's initial output.")
    p.add_argument("--systems", help="Comma-separated systems of --outputs to include (pairwise takes the first two).")
    p.add_argument("--batch-size", type=int, default=1000, help="Tasks per import request.")
    p.add_argument("--seed", type=int, default=0, help="Seed of the order outputs are shown in.")
    connection_args(p)
    p.set_defaults(func=cmd_push)

    p = commands.add_parser("pull", help="Export annotations as records; pulling again adds only new ones.")
    p.add_argument("--project", required=True, help="Project title.")
    p.add_argument("--out", required=True, help="Records JSONL: feedback, outputs (ideal) or comparisons.")
    p.add_argument("--template", choices=("feedback", "ideal", "pairwise", "ranking"), help="Only for projects not created by ilf.")
    p.add_argument("--reference", help="Ranking projects: report win rates against this system (e.g. reference).")
    p.add_argument("--table", help="Ranking projects: also write the win-rate table as JSON here.")
    connection_args(p)
    p.set_defaults(func=cmd_pull)
