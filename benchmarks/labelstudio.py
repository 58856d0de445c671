"""Push 10,000 tasks to and pull 10,000 annotations from a real local Label Studio server.

Prints seconds and throughput of ilf's push (batched import) and pull (one export), and the
ratio against one request per task, measured in the same run on a slice of the same project and
scaled to the full count (a full per-task baseline would take many minutes).

    python benchmarks/labelstudio.py [--tasks 10000] [--baseline-tasks 200] [--url URL]

Without --url it starts a throw-away server on a free loopback port and stops it at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from ilf.labelstudio.client import Connection, LabelStudio, LabelStudioError
from ilf.labelstudio.server import free_port, start_server, stop_server
from ilf.labelstudio.sync import build_tasks, pull, push
from ilf.records import Sample


def samples(n: int) -> list[Sample]:
    return [
        Sample(id=f"bench-{i:05d}", inputs={"title": f"Post {i}", "post": f"Body of post {i}. " * 8}, initial_output=f"Summary {i}.")
        for i in range(n)
    ]


def annotated(tasks: list[dict]) -> list[dict]:
    """The same tasks with one finished critique each, imported in bulk like tasks."""
    for task in tasks:
        text = f"Critique of {task['data']['sample_id']}."
        task["annotations"] = [
            {"result": [{"from_name": "feedback", "to_name": "output", "type": "textarea", "value": {"text": [text]}}], "lead_time": 10.0}
        ]
    return tasks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--baseline-tasks", type=int, default=200)
    parser.add_argument("--url", help="An existing server (LABEL_STUDIO_API_KEY must be set).")
    args = parser.parse_args()

    data_dir = None
    if args.url:
        client = LabelStudio(Connection(args.url, os.environ["LABEL_STUDIO_API_KEY"]))
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="ilf-ls-bench-"))
        print(f"starting a local Label Studio in {data_dir} ...", file=sys.stderr)
        info, creds = start_server(data_dir, port=free_port())
        client = LabelStudio(Connection(info.url, creds.token))
    try:
        stamp = time.strftime("%H%M%S")
        rows = []
        n = args.tasks

        # push: ilf (batched, idempotent) vs one import request per task
        tasks = build_tasks("feedback", samples(n))
        started = time.perf_counter()
        result = push(client, f"bench-push-{stamp}", "feedback", tasks)
        push_seconds = time.perf_counter() - started
        assert result.imported == n, result
        baseline_project, _ = client.get_or_create_project(f"bench-push1-{stamp}", "feedback")
        few = build_tasks("feedback", samples(args.baseline_tasks))
        started = time.perf_counter()
        for task in few:
            client.import_tasks(baseline_project.id, [task])
        per_task_push = (time.perf_counter() - started) / len(few)
        rows.append(("push", n, push_seconds, per_task_push * n))

        # pushing again into the full project: every task is read back to find what is new; the
        # task-count check that guards very large projects costs one request
        started = time.perf_counter()
        again = push(client, f"bench-push-{stamp}", "feedback", tasks)
        repush_seconds = time.perf_counter() - started
        assert again.imported == 0 and again.already_present == n, again
        started = time.perf_counter()
        try:
            push(client, f"bench-push-{stamp}", "feedback", tasks, max_project_tasks=n - 1)
            raise AssertionError("the task limit did not hold")
        except LabelStudioError as err:
            refused_seconds = time.perf_counter() - started
            refusal = str(err)

        # pull: ilf (one export, converted and written) vs one request per task
        title = f"bench-pull-{stamp}"
        project, _ = client.get_or_create_project(title, "feedback")
        for start in range(0, n, 1000):
            client.import_tasks(project.id, annotated(build_tasks("feedback", samples(n)[start : start + 1000])))
        out = Path(tempfile.mkdtemp()) / "feedback.jsonl"
        started = time.perf_counter()
        pulled = pull(client, title, out)
        pull_seconds = time.perf_counter() - started
        assert pulled.counts.new == n, pulled.counts
        ids = [t["id"] for t in client.export_tasks(project.id)[: args.baseline_tasks]]
        started = time.perf_counter()
        for task_id in ids:
            client._call("get a task", lambda task_id=task_id: client.sdk.tasks.get(task_id))
        per_task_pull = (time.perf_counter() - started) / len(ids)
        rows.append(("pull", n, pull_seconds, per_task_pull * n))

        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\nLabel Studio benchmark: {n} tasks, baseline measured on {args.baseline_tasks} and scaled; peak RSS {rss_mb:.0f} MB")
        print("| operation | items | ilf seconds | items/s | one request per task (s, scaled) | speed-up |")
        print("|---|---|---|---|---|---|")
        for name, items, ours, baseline in rows:
            print(f"| {name} | {items} | {ours:.1f} | {items / ours:.0f} | {baseline:.1f} | {baseline / ours:.1f}x |")
        print(f"\npush again into the {n}-task project (nothing new): {repush_seconds:.1f} s")
        print(f"refused above max_project_tasks={n - 1}: {refused_seconds:.2f} s: {refusal}")
    finally:
        if data_dir is not None:
            stop_server(data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
