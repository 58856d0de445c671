"""The judge_win_rate metric: exact figures with a judge whose answers are known (the facts world's
annotator), a deliberately position-biased tiny model, a real ``transformers serve`` judge, agreement
with people's comparisons, config errors, and an `ilf run` whose metrics.json carries the figures."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml
from flaky_proxy import FlakyProxy

from ilf.cli import main
from ilf.config import ConfigError, ModelConfig, RemoteConfig, RunConfig, SamplingConfig, build_config, load_config
from ilf.demo import world
from ilf.generate import LocalSampler
from ilf.metrics.judge import JudgeWinRate, ModelJudge, Pair
from ilf.models import load_model, save_model, tiny_model
from ilf.pipeline import Pipeline
from ilf.records import Comparison, Output, Sample, read_records, write_records

FACTS_RUN = {
    "name": "judge",
    "method": "before",
    "data": {"loader": "facts_world", "split": "train", "limit": 4, "eval_split": "test", "eval_limit": 4},
    "task": {"name": "facts"},
    "feedback": {"source": "simulated"},
    "policy": {"name_or_path": "tiny:gpt2", "device": "cpu"},
    "evaluation": {
        "sampling": {"do_sample": False, "max_new_tokens": 8, "batch_size": 4},
        "metrics": ["facts", "judge_win_rate"],
    },
    "metric_options": {"judge_win_rate": {"kind": "annotator", "prompt": "facts"}},
}


def facts_samples(count: int = 4) -> list[Sample]:
    posts = world.generate_posts(count, seed=11, prefix="judge")
    return [Sample(id=p.id, inputs={"post": p.text()}, references=[p.reference()], extra=world.post_record(p)) for p in posts]


def half(sample: Sample) -> str:
    """A summary stating only the first salient fact: worse than the reference, which states both."""
    return world.post_from_sample(sample).salient_facts[0].text()


def other(sample: Sample) -> str:
    """A summary stating only a fact the post does not mark as salient: worse than ``half``."""
    post = world.post_from_sample(sample)
    return next(f for f, salient in zip(post.facts, post.salient) if not salient).text()


def run_with(tmp_path: Path, **judge: object) -> Pipeline:
    raw = json.loads(json.dumps(FACTS_RUN))
    raw["metric_options"]["judge_win_rate"].update(judge)
    return Pipeline(build_config(raw, "test"), tmp_path / "run")


def test_annotator_judge_gives_exact_win_rate_sem_ties_and_no_position_bias(tmp_path: Path) -> None:
    samples = facts_samples()
    s0, s1, s2, s3 = samples
    # Against the references: equal to one (a tie in both orders), and three worse ones (losses).
    texts = [s0.references[0], half(s1), other(s2), ""]
    run = run_with(tmp_path)
    scores = JudgeWinRate().score_outputs(run, samples, [Output(s.id, t, "base") for s, t in zip(samples, texts)])
    assert scores["judge_pairs"] == 4
    assert scores["judge_win_rate"] == pytest.approx(0.125)  # (0.5 + 0 + 0 + 0) / 4
    assert scores["judge_win_rate_sem"] == pytest.approx(math.sqrt((0.375**2 + 3 * 0.125**2) / 3 / 4))
    assert scores["judge_ties"] == pytest.approx(2 / 8)  # the equal pair, asked in both orders
    assert scores["judge_position_bias"] == 0.0
    assert scores["judge_first_preferred"] == 0.5  # the better text won whichever side it was on
    assert scores["judge_unparsed"] == 0.0

    # Against an outputs file: wins, a loss and a tie, each the same in both orders.
    opponents = tmp_path / "opponents.jsonl"
    write_records(opponents, [Output(s0.id, half(s0)), Output(s1.id, s1.references[0]), Output(s2.id, half(s2)), Output(s3.id, other(s3))])
    run = run_with(tmp_path, against=str(opponents))
    mine = [s0.references[0], half(s1), half(s2), half(s3)]
    scores = JudgeWinRate().score_outputs(run, samples, [Output(s.id, t, "finetuned") for s, t in zip(samples, mine)])
    assert scores["judge_win_rate"] == pytest.approx(0.625)  # (1 + 0 + 0.5 + 1) / 4
    assert scores["judge_win_rate_sem"] == pytest.approx(math.sqrt((2 * 0.375**2 + 0.625**2 + 0.125**2) / 3 / 4))
    assert (scores["judge_ties"], scores["judge_position_bias"], scores["judge_first_preferred"]) == (0.25, 0.0, 0.5)


def test_an_outputs_file_of_several_systems_needs_the_one_to_compare_with(tmp_path: Path) -> None:
    samples = facts_samples(2)
    both = tmp_path / "both.jsonl"
    # base's outputs come first in the file: without a choice they would silently be the opponents
    write_records(
        both, [*(Output(s.id, other(s), "base") for s in samples), *(Output(s.id, s.references[0], "finetuned") for s in samples)]
    )
    with pytest.raises(
        ConfigError,
        match=r"field 'metric_options.judge_win_rate.against_system': .*both.jsonl holds the outputs of 2 systems \(base, finetuned\)",
    ):
        load_config(None, [f"metric_options.judge_win_rate.against={both}"])
    with pytest.raises(ConfigError, match=r"against_system': .*no outputs of system 'policy' \(it has base, finetuned\)"):
        load_config(None, [f"metric_options.judge_win_rate.against={both}", "metric_options.judge_win_rate.against_system=policy"])
    with pytest.raises(ConfigError, match=r"against_system': names a system of an outputs file, but against is 'references'"):
        load_config(None, ["metric_options.judge_win_rate.against_system=base"])
    run = run_with(tmp_path, against=str(both), against_system="finetuned")
    scores = JudgeWinRate().score_outputs(run, samples, [Output(s.id, half(s), "policy") for s in samples])
    assert scores["judge_win_rate"] == 0.0  # half a summary against the references finetuned wrote: lost every time


def test_against_another_system_needs_it_evaluated_first(tmp_path: Path) -> None:
    samples = facts_samples(2)
    run = run_with(tmp_path, against="base")
    metric = JudgeWinRate()
    with pytest.raises(
        ValueError, match=r"metric_options.judge_win_rate.against: system 'base' is not evaluated before 'finetuned'.*include_base"
    ):
        metric.score_outputs(run, samples, [Output(s.id, s.references[0], "finetuned") for s in samples])
    assert metric.score_outputs(run, samples, [Output(s.id, half(s), "base") for s in samples]) == {}  # itself: no row
    scores = metric.score_outputs(run, samples, [Output(s.id, s.references[0], "finetuned") for s in samples])
    assert (scores["judge_win_rate"], scores["judge_win_rate_sem"], scores["judge_pairs"]) == (1.0, 0.0, 2)


def first_loving_model(folder: Path) -> Path:
    """A tiny GPT-2 whose every next token is 'A': the final layer norm ignores its input and emits
    the direction of 'A''s (tied) embedding, whatever the prompt. (Its vocabulary splits ' A' into a
    space and 'A', so ' A' beats ' B' on the second token.)"""
    model, tokenizer = tiny_model("gpt2", seed=5)
    (answer,) = tokenizer("A", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(model.transformer.wte.weight[answer] * 50)
    save_model(model, tokenizer, folder)
    return folder


@pytest.mark.parametrize("mode", ["logprobs", "generate"])
def test_a_judge_that_always_picks_the_first_text_scores_one_half_with_full_position_bias(tmp_path: Path, mode: str) -> None:
    folder = first_loving_model(tmp_path / "first-loving")
    samples = facts_samples()
    # One answer token when generating: the model goes on saying "A", and "AAA" names neither text.
    judge = {"kind": "model", "model": {"name_or_path": str(folder), "device": "cpu"}, "mode": mode, "max_answer_tokens": 1}
    run = run_with(tmp_path, **judge)
    # Outputs that the annotator would rank every which way: the biased judge ignores them all.
    texts = [samples[0].references[0], half(samples[1]), other(samples[2]), "nothing"]
    scores = JudgeWinRate().score_outputs(run, samples, [Output(s.id, t, "base") for s, t in zip(samples, texts)])
    assert scores["judge_win_rate"] == 0.5 and scores["judge_win_rate_sem"] == 0.0
    assert scores["judge_position_bias"] == 1.0
    assert scores["judge_first_preferred"] == 1.0
    assert scores["judge_ties"] == 0.0 and scores["judge_unparsed"] == 0.0
    # A tie margin wider than the judge's certainty makes every verdict a tie (log-probs only).
    if mode == "logprobs":
        wide = run_with(tmp_path, **judge, tie_margin=1e6)
        scores = JudgeWinRate().score_outputs(wide, samples, [Output(s.id, t, "base") for s, t in zip(samples, texts)])
        assert (scores["judge_win_rate"], scores["judge_ties"], scores["judge_position_bias"]) == (0.5, 1.0, 0.0)
        assert scores["judge_first_preferred"] is None  # no decisive verdict to count


def test_answer_logprobs_do_not_depend_on_the_left_padding_of_a_batch(tmp_path: Path) -> None:
    samples = facts_samples(4)
    # float32: in bfloat16 (what dtype auto picks on some CPUs) padding moves log-probs by ~3e-3
    config = JudgeWinRate.options(
        run_with(tmp_path, kind="model", model={"name_or_path": "tiny:gpt2", "seed": 2, "device": "cpu", "dtype": "float32"}).config
    )
    judge = ModelJudge(config, config.model)
    # Texts of very different lengths, so most rows of a batch are padded.
    prompts = [judge.prompt(Pair(s, s.references[0] * (1 + 3 * i), "x")) for i, s in enumerate(samples)]
    one_by_one = [judge._answer_logprobs([p])[0] for p in prompts]
    batched = judge._answer_logprobs(prompts)
    assert [x for row in batched for x in row] == pytest.approx([x for row in one_by_one for x in row], abs=1e-4)
    assert all(a != b for a, b in batched)  # the two answers do get different log-probs


def test_the_judge_records_its_options_and_its_models_files_as_what_evaluate_read(tmp_path: Path) -> None:
    from ilf import reads

    folder = first_loving_model(tmp_path / "judge-model")
    run = run_with(tmp_path, kind="model", model={"name_or_path": str(folder)})
    with reads.recording(run.paths.root) as recorded:
        JudgeWinRate().judge(run)
    entries = recorded.entries()
    assert ["content", str(folder.resolve()), reads.content_digest(folder)] in entries  # retrained in place: another digest
    options = next(value for kind, where, value in entries if kind == "options")
    assert options["kind"] == "model" and options["model"]["name_or_path"] == str(folder)
    before = reads.content_digest(folder)
    (folder / "config.json").write_text((folder / "config.json").read_text() + "\n")
    assert reads.content_digest(folder) != before


def test_served_judge_asks_both_orders_and_agrees_with_the_same_model_run_locally(server, tmp_path: Path) -> None:
    samples = facts_samples(3)
    texts = [half(s) for s in samples]
    local_model = ModelConfig(name_or_path=server["model"], device="cpu")
    # The served model's weights are random, so its answers are words of its own: take the two it
    # says most often as the answers, so that some verdicts parse and some do not.
    probe = ModelJudge(
        JudgeWinRate.options(run_with(tmp_path, kind="model", model={"name_or_path": server["model"]}, prompt="pairwise").config),
        local_model,
    )
    prompts = [probe.prompt(Pair(s, t, s.references[0])) for s, t in zip(samples, texts)]
    prompts += [probe.prompt(Pair(s, s.references[0], t)) for s, t in zip(samples, texts)]
    replies, _ = LocalSampler(load_model(local_model)).sample(prompts, 1, SamplingConfig(do_sample=False, max_new_tokens=3), seed=0)
    words = Counter(r[0].split()[0] for r in replies if r[0].split() and r[0].split()[0].isalnum())
    answers = [f" {w}" for w, _ in words.most_common(2)] + [" zzz-never"] * (2 - len(words))
    assert len(words) >= 1, f"the served model gave no word-like answer: {replies}"

    outputs = [Output(s.id, t, "base") for s, t in zip(samples, texts)]
    judge = {"kind": "model", "mode": "generate", "answers": answers, "prompt": "pairwise"}
    local = JudgeWinRate().score_outputs(
        run_with(tmp_path, **judge, model={"name_or_path": server["model"], "device": "cpu"}), samples, outputs
    )
    with FlakyProxy(server["url"]) as proxy:  # counts the requests that reach the server
        served = {"name_or_path": server["model"], "backend": "openai", "remote": {"base_url": f"{proxy.url}/v1", "max_retries": 0}}
        remote = JudgeWinRate().score_outputs(run_with(tmp_path, **judge, model=served), samples, outputs)
    assert proxy.requests == 2 * len(samples)  # each pair in both orders, one request each
    assert remote == local  # greedy decoding on the same tokens: the same answers, parsed alike
    assert remote["judge_pairs"] == 3
    assert 0.0 <= remote["judge_unparsed"] <= remote["judge_ties"] <= 1.0
    assert remote["judge_unparsed"] < 1.0  # some answers named a text


def test_agreement_with_people_is_one_for_their_own_choices_and_zero_for_the_flipped_ones(tmp_path: Path) -> None:
    samples = facts_samples()
    s0, s1, s2, s3 = samples
    comparisons = [
        Comparison(s0.id, s0.references[0], half(s0), "a", annotator="alice"),
        Comparison(s1.id, half(s1), s1.references[0], "b", annotator="alice"),
        Comparison(s2.id, other(s2), half(s2), "b", annotator="bob"),
        Comparison(s3.id, half(s3), other(s3), "a", annotator="bob"),
        Comparison(s3.id, s3.references[0], half(s3), "tie", annotator="bob"),  # a person's tie: left out, counted
    ]
    flipped = [
        Comparison(c.sample_id, c.a, c.b, {"a": "b", "b": "a", "tie": "tie"}[c.preferred], annotator=c.annotator) for c in comparisons
    ]
    for name, records in (("human.jsonl", comparisons), ("flipped.jsonl", flipped)):
        write_records(tmp_path / name, records)
    run = run_with(tmp_path, human=str(tmp_path / "human.jsonl"))
    write_records(run.paths.samples, samples)
    write_records(run.paths.eval_samples, [])
    assert JudgeWinRate().score_round(run) == {
        "judge_human_pairs": 5,
        "judge_human_ties": 1,
        "judge_human_agreement": 1.0,
        "judge_human_kappa": 1.0,
    }
    run = run_with(tmp_path, human=str(tmp_path / "flipped.jsonl"))
    scores = JudgeWinRate().score_round(run)
    assert (scores["judge_human_agreement"], scores["judge_human_kappa"], scores["judge_human_ties"]) == (0.0, -1.0, 1)

    # The run's own comparisons count when they are people's; the simulated annotator's are not.
    run = Pipeline(build_config({**FACTS_RUN, "method": "rm_best_of_n"}, "test"), tmp_path / "ranking")
    write_records(run.paths.samples, samples)
    write_records(run.paths.eval_samples, [])
    write_records(run.paths.comparisons, comparisons[:2] + [Comparison(s2.id, other(s2), half(s2), "a", annotator="simulated")])
    assert JudgeWinRate().score_round(run)["judge_human_pairs"] == 2


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"field 'metric_options.judge_win_rate.against': must be references.*got 'the refs'"):
        load_config(None, ["metric_options.judge_win_rate.against=the refs"])
    with pytest.raises(ConfigError, match=r"field 'metric_options.judge_win_rate.against': no such outputs file"):
        load_config(None, [f"metric_options.judge_win_rate.against={tmp_path / 'missing.jsonl'}"])
    config_file = tmp_path / "run.yaml"
    config_file.write_text(
        yaml.safe_dump({"evaluation": {"metrics": ["judge_win_rate"]}, "metric_options": {"judge_win_rate": {"prompt": "./no_prompt.txt"}}})
    )
    with pytest.raises(
        ConfigError, match=rf"{config_file}: field 'metric_options.judge_win_rate.prompt': no such file .*no_prompt.txt.*facts, pairwise"
    ):
        load_config(config_file)
    with pytest.raises(ConfigError, match=r"field 'metric_options.judge_win_rate.model': the judge_win_rate metric needs a judge model"):
        load_config(None, ["evaluation.metrics=[judge_win_rate]"])
    with pytest.raises(ConfigError, match=r"field 'metric_options.judge_win_rate.answers'"):
        load_config(None, ["metric_options.judge_win_rate.answers=[' A', 'A']"])
    with pytest.raises(ConfigError, match=r"field 'metric_options.judge_win_rate.mode': logprobs needs a local model"):
        load_config(None, ["metric_options.judge_win_rate.mode=logprobs", "metric_options.judge_win_rate.model.backend=openai"])
    # A prompt file next to the config is found relative to it, and its placeholders are checked when used.
    (tmp_path / "mine.txt").write_text("{post}\n{nonsense}\nAnswer:")
    config_file.write_text(
        yaml.safe_dump({"metric_options": {"judge_win_rate": {"prompt": "mine.txt", "model": {"name_or_path": "tiny:gpt2"}}}})
    )
    config: RunConfig = load_config(config_file)
    options = JudgeWinRate.options(config)
    judge = ModelJudge(options, options.model)
    with pytest.raises(
        ValueError, match=r"metric_options.judge_win_rate.prompt: .*mine.txt: cannot fill the template \(KeyError: 'nonsense'\)"
    ):
        judge.verdicts([Pair(facts_samples(1)[0], "x", "y")])
    remote_judge = ModelConfig(name_or_path="m", backend="openai", remote=RemoteConfig(base_url="http://127.0.0.1:9/v1"))
    assert ModelJudge(options, remote_judge).mode == "generate"  # auto: a server's judge generates


def test_facts_run_reports_judge_win_rate_in_metrics_and_table_and_reruns_when_the_prompt_changes(tmp_path: Path, capsys) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("{inputs}\nA: {first}\nB: {second}\nAnswer:")
    raw = json.loads(json.dumps(FACTS_RUN))
    raw["metric_options"]["judge_win_rate"]["prompt"] = str(prompt)
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    run_dir = tmp_path / "run"
    assert main(["run", str(config_file), "--run-dir", str(run_dir)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    base = metrics["systems"]["base"]
    # The tiny random policy writes noise; the annotator prefers the reference to it in either order.
    samples = {s.id: s for s in read_records(run_dir / "eval_samples.jsonl", Sample)}
    outputs = read_records(run_dir / "eval_outputs.jsonl", Output)
    expected = []
    for o in outputs:
        post, reference = world.post_from_sample(samples[o.sample_id]), samples[o.sample_id].references[0]
        forward = {"a": 1.0, "tie": 0.5, "b": 0.0}[world.preference(post, o.text, reference)]
        backward = {"b": 1.0, "tie": 0.5, "a": 0.0}[world.preference(post, reference, o.text)]
        expected.append((forward + backward) / 2)
    assert base["judge_win_rate"] == pytest.approx(sum(expected) / len(expected))
    assert "judge_win_rate_sem" in base and base["judge_pairs"] == 4 and base["judge_position_bias"] == 0.0
    assert "| system | recall | precision | faithful | facts_stated | judge_win_rate |" in metrics["table"]
    assert f"{base['judge_win_rate']:.3f} ± {base['judge_win_rate_sem']:.3f}" in metrics["table"]
    assert metrics["table"] in printed
    # `before` reads no feedback: the run says so, in annotator-seconds
    assert metrics["round"]["annotator_seconds"] == 0 and "feedback read: no feedback = 0 annotator-seconds (cost.*)" in printed

    marker = (run_dir / ".ilf/stages/evaluate.json").read_text()
    assert main(["run", str(config_file), "--run-dir", str(run_dir)]) == 0
    assert (run_dir / ".ilf/stages/evaluate.json").read_text() == marker  # up to date: skipped
    prompt.write_text("{inputs}\nFirst: {first}\nSecond: {second}\nAnswer:")  # the judge's prompt file is an input
    assert main(["run", str(config_file), "--run-dir", str(run_dir)]) == 0
    assert (run_dir / ".ilf/stages/evaluate.json").read_text() != marker


def test_agreement_with_pairwise_judgements_made_in_a_real_label_studio(ls_client, project_title, tmp_path: Path) -> None:
    """People compare pairs in a Label Studio pairwise project; the pulled comparisons are the ones
    the judge is checked against. The person here prefers the reference on three posts and the
    shorter summary on the fourth; the annotator judge always prefers the reference."""
    from test_labelstudio import annotate, tasks_by_key

    from ilf.labelstudio.summary import cohens_kappa
    from ilf.labelstudio.sync import build_tasks, pull, push

    samples = facts_samples()
    outputs = [Output(sample_id=s.id, text=s.references[0], system="reference") for s in samples]
    outputs += [Output(sample_id=s.id, text=half(s), system="half") for s in samples]
    push(ls_client, project_title, "pairwise", build_tasks("pairwise", samples, outputs, ["reference", "half"]))
    expected = []
    for index, task in enumerate(sorted(tasks_by_key(ls_client, project_title).values(), key=lambda t: t["data"]["ilf_key"])):
        data = task["data"]
        reference_is_a = data["system_a"] == "reference"  # the sides are shuffled per sample
        person_picks_reference = index != 3
        picks_a = reference_is_a == person_picks_reference
        annotate(
            ls_client,
            task["id"],
            [
                {
                    "from_name": "comparison",
                    "to_name": "output_a,output_b",
                    "type": "pairwise",
                    "value": {"selected": "left" if picks_a else "right"},
                }
            ],
        )
        expected.append(("a" if picks_a else "b", "a" if reference_is_a else "b"))  # (the person, the judge)
    pull(ls_client, project_title, tmp_path / "pairs.jsonl")
    pulled = read_records(tmp_path / "pairs.jsonl", Comparison)
    assert len(pulled) == 4 and all(c.annotator != "simulated" for c in pulled)

    run = run_with(tmp_path, human=str(tmp_path / "pairs.jsonl"))
    write_records(run.paths.samples, samples)
    write_records(run.paths.eval_samples, [])
    scores = JudgeWinRate().score_round(run)
    assert (scores["judge_human_pairs"], scores["judge_human_ties"], scores["judge_human_agreement"]) == (4, 0, 0.75)
    assert scores["judge_human_kappa"] == pytest.approx(cohens_kappa(sorted(expected)))
