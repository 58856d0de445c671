"""The self-distillation peers of ILF: sdft and sdpo over TRL's experimental trainers, what their
teachers read, what their rewards are, and what they cost."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import REPO

from ilf.config import ConfigError, ModelConfig, RunConfig, load_config
from ilf.demo import world
from ilf.feedback.simulated import SimulatedAnnotator
from ilf.methods import get_method
from ilf.methods._privileged import privileged_rows, solution_context
from ilf.models import load_model
from ilf.records import Sample
from ilf.study import run_study
from ilf.tasks.code import CodeTask
from ilf.tasks.facts import FactsTask
from ilf.tasks.summarization import SummarizationTask
from ilf.train.sdft import SDFTTrainingConfig, train_sdft
from ilf.train.sdpo import SDPOTrainingConfig, train_sdpo

POSTS = world.generate_posts(4, seed=3)
FACTS = [Sample(id=p.id, inputs={"post": p.text()}, references=[p.reference()], extra=world.post_record(p)) for p in POSTS]


def test_the_facts_teacher_reads_ilfs_refinement_prompt_around_the_students() -> None:
    task = FactsTask()
    critiqued = [(s, "ann buys boat", "please add that ben sells cars") for s in FACTS[:2]]
    prepared = privileged_rows(task, critiqued, "auto", "unused {output} {feedback}")
    assert prepared.form == "refine" and prepared.template == "{prompt}{privileged_context}"
    for (sample, output, critique), row in zip(critiqued, prepared.rows):
        assert row["prompt"] == task.initial_prompt(sample)
        # TRL's template over the row gives exactly the prompt ILF's refiner reads
        teacher = prepared.template.format(prompt=row["prompt"], privileged_context=row["privileged_context"])
        assert teacher == task.refine_prompt(sample, output, critique)
        assert row["privileged_context"] == " ann buys boat feedback : please add that ben sells cars improved :"
    # a successful attempt reaches SDPO's teacher as the refinement prompt without feedback
    assert solution_context(task, FACTS, True) == " {successful_previous_attempt} improved :"


def test_the_code_teacher_ends_with_the_students_prompt_and_summaries_fall_back_to_the_context_form() -> None:
    code = Sample(id="c", inputs={"prompt": "def f(x):\n"}, extra={"test": "def check(c): pass", "entry_point": "f"})
    prepared = privileged_rows(CodeTask(), [(code, "    return 1\n", "wrong for x=2")], "auto", "")
    assert prepared.form == "refine" and prepared.template == "{privileged_context}{prompt}" and not prepared.prompt_first
    assert prepared.rows[0]["privileged_context"] == "OLD CODE:\ndef f(x):\n    return 1\n\nFEEDBACK:\nwrong for x=2\n\nREFINEMENT:\n"
    # the old code holds the sample's own prompt: no one solution template fits every sample, so TRL's is used
    other = Sample(id="d", inputs={"prompt": "def g(y):\n"}, extra={"test": "def check(c): pass", "entry_point": "g"})
    assert solution_context(CodeTask(), [code, other], False) is None

    post = Sample(id="s", inputs={"title": "t", "post": "p"})
    summary = privileged_rows(SummarizationTask(), [(post, "short", "too short")], "auto", "Earlier: {output} / {feedback}")
    assert summary.form == "context" and summary.template == "{privileged_context}\n\n{prompt}"
    assert summary.rows[0]["privileged_context"] == "Earlier: short / too short"
    with pytest.raises(ValueError, match="teacher: refine needs"):
        privileged_rows(SummarizationTask(), [(post, "short", "too short")], "refine", "")


def _annotator_run(noise: float) -> SimpleNamespace:
    """The little of a run the simulated source reads: its config (world settings and seed)."""
    config = RunConfig()
    config.world.annotator_noise = noise
    return SimpleNamespace(config=config)


def test_the_annotators_judgement_of_a_rollout_is_yes_or_no_with_the_noise_of_its_critiques() -> None:
    """sdpo's rollouts are scored as a person would score them: the annotator's noisy yes/no, not the
    world's exact F1 (the reported metric itself)."""
    posts = world.generate_posts(400, seed=5)
    samples = [Sample(id=p.id, inputs={"post": p.text()}, extra=world.post_record(p)) for p in posts]
    perfect = [(s, " ".join(f.text() for f in p.salient_facts)) for s, p in zip(samples, posts)]
    flawed = [(s, text + " " + next(f for f, k in zip(p.facts, p.salient) if not k).text()) for (s, text), p in zip(perfect, posts)]
    source = SimulatedAnnotator()

    clean, unit = source.reward(_annotator_run(0.0), perfect + flawed)  # type: ignore[arg-type]
    assert unit == "judgements" and clean == [1.0] * 400 + [0.0] * 400

    noisy, _ = source.reward(_annotator_run(0.1), perfect + flawed)  # type: ignore[arg-type]
    assert set(noisy) == {0.0, 1.0}  # a judgement, never a graded score
    rejected_perfect = noisy[:400].count(0.0) / 400  # misleading (flipped) or vague ("needs work"): noise in all
    accepted_flawed = noisy[400:].count(1.0) / 400  # misleading only: half the noise
    assert 0.05 <= rejected_perfect <= 0.16 and 0.015 <= accepted_flawed <= 0.09
    # the same rollout asked again gets the same answer, in any order
    again, _ = source.reward(_annotator_run(0.1), list(reversed(perfect + flawed)))  # type: ignore[arg-type]
    assert list(reversed(again)) == noisy

    # the noise-free score of the reported metric stays available for ablations, under its own unit
    oracle, unit = source.oracle_reward(_annotator_run(0.1), [perfect[0], flawed[0], (samples[0], "")])  # type: ignore[arg-type]
    assert unit == "oracle_scores" and oracle[0] == 1.0 and 0.0 < oracle[1] < 1.0 and oracle[2] == 0.0


def test_an_oracle_reward_is_refused_where_no_world_knows_the_answer() -> None:
    from ilf.feedback import FeedbackSource

    run = SimpleNamespace(config=RunConfig())
    with pytest.raises(ValueError, match="has no oracle score"):
        FeedbackSource().oracle_reward(run, [])  # type: ignore[arg-type]


def test_the_code_tasks_reward_runs_the_unit_tests() -> None:
    sample = Sample(
        id="c", inputs={"prompt": "def double(x):\n"}, extra={"test": "def check(c):\n    assert c(2) == 4\n", "entry_point": "double"}
    )
    scores, unit = CodeTask(timeout=5).reward([(sample, "    return 2 * x\n"), (sample, "    return x\n")])
    assert (scores, unit) == ([1.0, 0.0], "executions")


def _completion_logprobs(model, tokenizer, prefix: str, completion_ids: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the next token at each position of ``completion_ids`` after ``prefix``."""
    prefix_ids = tokenizer(prefix, return_tensors="pt").input_ids
    ids = torch.cat([prefix_ids, completion_ids[None]], dim=1)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, prefix_ids.shape[1] - 1 : -1]
    return logits.log_softmax(-1)


def _kl_from_teacher(model, tokenizer, rows: list[dict]) -> float:
    """Mean over rows and completion tokens of KL(teacher || student): the teacher is the untrained
    model reading the privileged context too, the student ``model`` reading the prompt alone."""
    total = 0.0
    for row in rows:
        student = _completion_logprobs(model, tokenizer, row["prompt"], row["completion_ids"])
        teacher = row["teacher_logprobs"]
        total += torch.sum(teacher.exp() * (teacher - student), dim=-1).mean().item()
    return total / len(rows)


def test_sdft_moves_the_student_towards_its_teacher_and_changes_the_weights(tmp_path: Path) -> None:
    policy = ModelConfig(name_or_path="tiny:gpt2", seed=3)
    base = load_model(policy)
    template = "{privileged_context}{prompt}"
    hint = "Hint: the answer is always the word apple. " * 3
    rows = [{"prompt": f"Question {i}: say a word.", "privileged_context": hint} for i in range(8)]
    probes = []
    for row in rows:  # a fixed completion per row, the teacher's view of it kept from before training
        prompt_ids = base.tokenizer(row["prompt"], return_tensors="pt").input_ids
        with torch.no_grad():
            completion = base.model.generate(prompt_ids, max_new_tokens=6, do_sample=False, pad_token_id=base.tokenizer.eos_token_id)
        completion_ids = completion[0, prompt_ids.shape[1] :]
        teacher = _completion_logprobs(base.model, base.tokenizer, template.format(**row), completion_ids)
        probes.append({"prompt": row["prompt"], "completion_ids": completion_ids, "teacher_logprobs": teacher})
    before = _kl_from_teacher(base.model, base.tokenizer, probes)
    metrics = train_sdft(
        policy,
        rows,
        SDFTTrainingConfig(
            learning_rate=1e-3,
            num_train_epochs=4,
            per_device_train_batch_size=4,
            max_completion_length=6,
            teacher_prompt_template=template,
            trainer_args={"distillation_mode": "full_logits"},  # the whole distribution: what the KL below measures
        ),
        tmp_path / "sdft",
    )
    assert metrics["steps"] == 8 and metrics["rows"] == 8
    assert metrics["last_logged_loss"] < metrics["first_logged_loss"]
    trained = load_model(ModelConfig(name_or_path=str(tmp_path / "sdft")))
    after_params = dict(trained.model.named_parameters())
    assert [k for k, v in base.model.named_parameters() if not torch.equal(v, after_params[k])]
    after = _kl_from_teacher(trained.model, trained.tokenizer, probes)
    assert after < before * 0.5, (before, after)  # the student without the hint now writes like the teacher with it


def test_sdpo_scores_every_rollout_with_its_sample_and_changes_the_policy(tmp_path: Path) -> None:
    policy = ModelConfig(name_or_path="tiny:gpt2", seed=5)
    rows = [{"prompt": f"Item {i}:", "privileged_context": "The earlier answer was too long.", "sample_id": f"s{i}"} for i in range(8)]
    seen: list[str] = []

    def short_is_good(ids: list[str], completions: list[str]) -> tuple[list[float], str]:
        seen.extend(ids)
        return [1.0 if len(c.split()) <= 2 else 0.0 for c in completions], "judgements"

    config = SDPOTrainingConfig(
        learning_rate=3e-3,
        max_steps=3,
        num_generations=4,
        per_device_train_batch_size=8,
        max_completion_length=6,
        feedback_template="{feedback_raw}",
    )
    metrics = train_sdpo(policy, rows, short_is_good, config, tmp_path / "sdpo")
    assert metrics["steps"] == 3
    assert metrics["rewards_scored"] == len(seen) == 3 * 8 and metrics["reward_unit"] == "judgements"
    assert set(seen) <= {r["sample_id"] for r in rows}  # the reward saw which sample each rollout answers
    base = dict(load_model(policy).model.named_parameters())
    trained = dict(load_model(ModelConfig(name_or_path=str(tmp_path / "sdpo"))).model.named_parameters())
    assert [k for k, v in base.items() if not torch.equal(v, trained[k])]


def test_method_options_are_checked_against_the_methods_own_settings(tmp_path: Path) -> None:
    # refused when the config loads, before any stage runs
    with pytest.raises(ConfigError, match=r"method_options\.sdft\.max_step.*did you mean 'max_steps'"):
        load_config(None, ["method=sdft", "method_options.sdft.max_step=3"])
    with pytest.raises(ConfigError, match=r"method_options\.sdpo\.per_device_train_batch_size.*multiple of num_generations"):
        load_config(None, ["method_options.sdpo.per_device_train_batch_size=6"])
    assert get_method("sdft").options(load_config(None, ["method_options.sdft.teacher=context"])).teacher == "context"


SMALL_WORLD = [
    "data.limit=20",
    "data.eval_limit=24",
    "pretraining.steps=120",
    "pretraining.examples=4000",
    "refine.num_candidates=2",
    "selection.also_score=[]",
    "finetune.num_train_epochs=1",
    "feedback_options.simulated.comparisons_per_sample=3",
    "reward.num_train_epochs=1",
    "method_options.sdft.per_device_train_batch_size=8",
    "method_options.sdpo.max_steps=2",
    "method_options.sdpo.per_device_train_batch_size=8",
    "study.seeds=[0]",
    "study.methods=[before,ilf,sft_reference,dpo,sdft,sdpo]",
    "study.budgets=[600]",
    "study.gates=[]",
    "study.contrasts=[]",
]


@pytest.mark.slow
def test_the_peers_study_gives_every_method_the_same_annotator_time_to_spend_on_its_own_feedback(tmp_path: Path) -> None:
    result = run_study(REPO / "ilf" / "studies" / "peers.yaml", tmp_path, [*SMALL_WORLD, f"pretraining.cache_dir={tmp_path / 'cache'}"])
    rows = {(r["method"], r["axis:world.preference"]): r for r in json.loads((tmp_path / "cells.json").read_text())}
    for world_name in ("cued", "hidden"):
        cost = {m: rows[(m, world_name)]["metrics"] for m in ("before", "ilf", "sft_reference", "dpo", "sdft", "sdpo")}
        assert cost["before"]["annotator_seconds"] == 0
        # 600 s: ten critiques of 60 s for ilf and sdft (the same ones), three references of 180 s
        assert cost["ilf"]["cost.critiques"] == cost["sdft"]["cost.critiques"] == 10 == cost["ilf"]["train_samples"]
        assert cost["ilf"]["annotator_seconds"] == cost["sdft"]["annotator_seconds"] == 600
        assert cost["sft_reference"]["cost.references"] == 3 and cost["sft_reference"]["annotator_seconds"] == 540
        # dpo buys posts until their distinct pairs (37 s each, one a post: 2 samples compared) would pass
        # the budget, or the posts run out (identical samples are not compared, and cost nothing)
        spent = cost["dpo"]["annotator_seconds"]
        assert spent <= 600 and (spent > 600 - 37 or cost["dpo"]["train_samples"] == 20)
        assert cost["dpo"]["seconds.comparisons"] == 37 * cost["dpo"]["cost.comparisons"]
        # sdpo: a critique and 6.4 judged rollouts a post (175.2 s): three posts, ceil(3 x 6.4 / 8) = 3 steps
        assert cost["sdpo"]["cost.critiques"] == 3 and 0 < cost["sdpo"]["cost.judgements"] <= 3 * 8
        trained = json.loads((Path(rows[("sdpo", world_name)]["dir"]) / "model" / "sdpo_metrics.json").read_text())
        assert trained["rewards_distinct"] == cost["sdpo"]["cost.judgements"] <= trained["rewards_scored"] == 3 * 8
        for method in ("sdft", "sdpo"):
            assert 0.0 <= cost[method]["recall"] <= 1.0
            trained = json.loads((Path(rows[(method, world_name)]["dir"]) / "model" / f"{method}_metrics.json").read_text())
            assert trained["steps"] > 0 and trained["rows"] == cost[method]["train_samples"]
    for method in ("sdft", "sdpo", "ilf", "dpo"):
        assert f"| {method} |" in result["report"]
    assert "annotator_seconds" in result["report"].split("\n## ")[1]  # a column of the main table
    cost_table = result["report"].split("\n## Cost\n")[1].split("\n## ")[0]
    assert "| ilf | budget=600, world.preference=cued | 10 |" in cost_table.replace(" · ", ", ")
    assert (tmp_path / "report_cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _budget_run(tmp_path: Path, method: str, budget: float, **extra: object):
    from ilf.config import build_config
    from ilf.pipeline import Pipeline
    from ilf.records import write_records

    raw = {
        "method": method,
        "data": {"loader": "facts_world", "limit": 4},
        "task": {"name": "facts"},
        "feedback": {"source": "simulated"},
        "finetune": {"budget": budget},
        **extra,
    }
    run = Pipeline(build_config(raw, "test"), tmp_path / f"{method}-{budget}")
    write_records(run.paths.samples, FACTS)
    return run


def test_a_budget_buys_the_first_samples_whose_feedback_it_pays_for(tmp_path: Path) -> None:
    from ilf.records import Comparison, Feedback, write_records

    run = _budget_run(tmp_path, "dpo", 37 * 4.5)
    pairs = {FACTS[0].id: 3, FACTS[1].id: 1, FACTS[2].id: 0, FACTS[3].id: 2}  # distinct pairs the annotator compared
    write_records(
        run.paths.comparisons,
        [Comparison(sample_id=s, a=f"a{i}", b=f"b{i}", preferred="a") for s, n in pairs.items() for i in range(n)],
    )
    # 3 + 1 + 0 pairs cost 148 s; the fourth post's 2 more would pass 166.5 s
    assert [s.id for s in run.training_samples()] == [s.id for s in FACTS[:3]]
    assert run.method.feedback_cost(run.view) == {"comparisons": 4}

    ilf = _budget_run(tmp_path, "ilf", 150.0, cost={"critique": 50.0})
    write_records(ilf.paths.feedback, [Feedback(sample_id=s.id, text="please add that ann buys boat", lead_time=None) for s in FACTS])
    assert [s.id for s in ilf.training_samples()] == [s.id for s in FACTS[:3]]  # three critiques of 50 s
    free = _budget_run(tmp_path, "sft_initial", 1.0)
    assert len(free.training_samples()) == 4  # its own outputs cost nobody anything


def test_annotator_seconds_price_each_kind_and_take_label_studios_lead_times_where_measured(tmp_path: Path) -> None:
    from ilf.records import Feedback, write_records

    run = _budget_run(tmp_path, "sdpo", 1e9)
    write_records(
        run.paths.feedback,
        [Feedback(sample_id=s.id, text="add ann", lead_time=12.5 if i == 0 else None) for i, s in enumerate(FACTS)],
    )
    run.paths.model.mkdir(parents=True)
    (run.paths.model / "sdpo_metrics.json").write_text(
        json.dumps({"rewards_scored": 16, "rewards_distinct": 10, "reward_unit": "judgements"})
    )
    spent = run.method.spent(run.view)
    # the critiques read: one priced by the lead time Label Studio recorded, three at 60 s; the distinct rollouts judged at 18 s
    assert (spent["cost.critiques"], spent["seconds.critiques"]) == (4, round(12.5 + 3 * 60))
    assert (spent["cost.judgements"], spent["seconds.judgements"]) == (10, 180)
    assert spent["annotator_seconds"] == round(12.5 + 180 + 180) and spent["measured_share"] == round(12.5 / 372.5, 3)
    assert run.method.feedback_cost(run.view) == {"critiques": 4, "judgements": 10}
    # a budget prices each sample as the round does, the sample's planned judgements added (6.4 x 18 s by default here)
    per = run.method.sample_seconds(run.view, FACTS)
    judged = run.method._judgements_per_sample(run.config)[0] * 18
    assert per == pytest.approx([12.5 + judged, 60 + judged, 60 + judged, 60 + judged])

    from ilf.costs import price

    with pytest.raises(ValueError, match="no price for feedback of kind 'gestures'"):
        price(run.config.cost, "gestures")


def test_feedback_cost_counts_critiques_only_where_the_refiner_or_the_selector_reads_them(tmp_path: Path) -> None:
    from ilf.config import build_config
    from ilf.pipeline import Pipeline
    from ilf.records import Feedback, write_records

    def cost(method: str, selector: str) -> dict[str, int]:
        raw = {
            "method": method,
            "data": {"loader": "facts_world", "limit": 4},
            "task": {"name": "facts"},
            "feedback": {"source": "simulated"},
        }
        raw["selection"] = {"method": selector, "also_score": []}
        run = Pipeline(build_config(raw, "test"), tmp_path / f"{method}-{selector}")
        write_records(run.paths.samples, FACTS)
        write_records(run.paths.feedback, [Feedback(sample_id=s.id, text="please add that ann buys boat") for s in FACTS[:3]])
        return run.method.feedback_cost(run)

    assert cost("ilf", "random") == {"critiques": 3}  # the refiner read them
    assert cost("refine_no_feedback", "embedding") == {"critiques": 3}  # the selector compares refinements with them
    assert cost("refine_no_feedback", "random") == {}  # nobody read them
    assert cost("sft_reference", "embedding") == {"references": 4}
    assert cost("sdft", "random") == {"critiques": 3}
