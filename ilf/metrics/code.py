"""pass@k: the chance that at least one of k programs sampled for a problem passes its unit
tests, estimated without bias from n >= k samples of which c pass (Chen et al. 2021):
1 - C(n-c, k) / C(n, k), computed as a product so that large n stays exact in floating point.

Outputs are grouped by sample, so n is however many outputs a system wrote per problem. The
evaluate stage writes one per held-out sample (greedy by default), which gives pass@1; a stage
that samples N per prompt plugs in here unchanged and gets pass@10 once N >= 10. Each output's
verdict is written beside it in the evaluation outputs (``extra.execution``: status, error, the
failing line and test). ``score_round`` reports what the round's programs did: initial outputs,
refinements, and the selected refinements that passed, and how many of the method's training
targets pass (``code.targets_pass_rate``: 1.0 for the references of a sound dataset).

A program the sandbox failed to run (``sandbox_error``: a worker that could not start, or ended
while it ran the program) counts as not passing and is reported as ``code.sandbox_errors``;
``run_completions`` stops the run when they exceed ``task.options.max_sandbox_errors`` of the
programs (5% by default), so that a broken sandbox cannot pass for bad programs. With more than
one output per problem the evaluate stage keeps duplicate draws, as the estimator assumes
independent samples, and ``evaluation.num_samples > 1`` needs sampling, not greedy decoding.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ilf.evaluation import mean_and_sem
from ilf.execution.programs import has_tests, result_record, run_completions, sandbox_for
from ilf.execution.sandbox import ExecutionResult
from ilf.metrics import Metric
from ilf.records import Output, Refinements, Sample, read_records
from ilf.registry import METRICS

if TYPE_CHECKING:
    from ilf.view import RunView

KS = (1, 10)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with ``c`` of ``n`` samples passing."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def pass_at_ks(counts: list[tuple[int, int]], ks: tuple[int, ...] = KS) -> dict[str, float]:
    """Mean pass@k (and its standard error) over problems given as (n, c), for each k every problem allows."""
    result: dict[str, float] = {}
    for k in ks:
        if counts and all(n >= k for n, _ in counts):
            result[f"pass@{k}"], result[f"pass@{k}_sem"] = mean_and_sem([pass_at_k(n, c, k) for n, c in counts])
    return result


@METRICS.register(
    "pass_at_k",
    help="Unit tests run in a sandbox: unbiased pass@1 (pass@10 with >= 10 outputs per problem) ± SEM, the verdict of each "
    "output, and the round's pass rates (initial, refinements, selected).",
)
class PassAtK(Metric):
    columns = ("pass@1", "pass@10")
    every_output = True
    independent_samples = True

    def score_outputs(self, run: RunView | None, samples: list[Sample], outputs: list[Output]) -> dict[str, Any]:
        by_id = {s.id: s for s in samples}
        scored = [o for o in outputs if o.sample_id in by_id and has_tests(by_id[o.sample_id])]
        if not scored:
            return {}
        results = run_completions(sandbox_for(run.task if run is not None else self.task), [(by_id[o.sample_id], o.text) for o in scored])
        per_sample: dict[str, list[bool]] = defaultdict(list)
        for output, result in zip(scored, results):
            output.extra["execution"] = result_record(result)
            per_sample[output.sample_id].append(result.passed)
        metrics: dict[str, Any] = pass_at_ks([(len(v), sum(v)) for v in per_sample.values()])
        metrics.update(_counts(results))
        metrics["problems"] = len(per_sample)
        return metrics

    def score_round(self, run: RunView) -> dict[str, Any]:
        result = self._targets(run)
        if "refine" not in run.stages or not run.paths.refinements.exists():
            return result
        samples = {s.id: s for s in run.samples() if has_tests(s)}
        records = [r for r in read_records(run.paths.refinements, Refinements) if r.sample_id in samples]
        if not records:
            return result
        sandbox = sandbox_for(run.task)
        initial = run_completions(sandbox, [(samples[r.sample_id], r.output or "") for r in records])
        candidates = run_completions(sandbox, [(samples[r.sample_id], c.text) for r in records for c in r.candidates])
        any_passing, start = [], 0
        for r in records:
            any_passing.append(any(x.passed for x in candidates[start : start + len(r.candidates)]))
            start += len(r.candidates)
        result |= {
            "code.sandbox_errors": _sandbox_errors(initial) + _sandbox_errors(candidates),
            "code.initial_pass_rate": _rate(initial),
            "code.refinement_pass_rate": _rate(candidates),
            "code.samples_with_a_passing_refinement": sum(any_passing) / len(records),
        }
        if "select" in run.stages and run.paths.selected.exists():
            chosen = [s for s in run.selections() if s.sample_id in samples]
            picked = run_completions(sandbox, [(samples[s.sample_id], s.text) for s in chosen])
            result["code.selected"] = len(chosen)
            if picked:
                result["code.selected_pass_rate"] = _rate(picked)
                result["code.sandbox_errors"] += _sandbox_errors(picked)
        return result

    def _targets(self, run: RunView) -> dict[str, Any]:
        """What the method trains on, run against the tests: ``code.targets`` of the training
        samples have a target, ``code.targets_pass_rate`` of those pass (the references should all pass)."""
        if not run.method.trains:
            return {}
        targets = run.method.targets(run)
        if targets is None:
            return {}
        samples = [s for s in run.training_samples() if has_tests(s)]
        pairs = [(s, targets[s.id]) for s in samples if targets.get(s.id, "").strip()]
        result: dict[str, Any] = {"code.targets": len(pairs)}
        if pairs:
            result["code.targets_pass_rate"] = _rate(run_completions(sandbox_for(run.task), pairs))
        return result


def _rate(results: list[ExecutionResult]) -> float:
    return sum(r.passed for r in results) / len(results) if results else float("nan")


def _sandbox_errors(results: list[ExecutionResult]) -> int:
    return sum(r.status == "sandbox_error" for r in results)


def _counts(results: list[ExecutionResult]) -> dict[str, int]:
    return {
        "programs": len(results),
        "timeouts": sum(r.status == "timeout" for r in results),
        "memory_errors": sum(r.status == "memory_error" for r in results),
        # programs the sandbox failed, counted as not passing; too many stop the run (task.options.max_sandbox_errors)
        "code.sandbox_errors": _sandbox_errors(results),
    }
