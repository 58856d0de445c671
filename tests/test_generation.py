import pytest
import torch

from ilf.config import ModelConfig, SamplingConfig
from ilf.generate import generate_outputs
from ilf.models import load_model
from ilf.tasks.base import TemplateTask

RAW = TemplateTask(stop_at_newline=False, drop_unfinished_sentence=False)


@pytest.fixture(scope="module")
def gpt2():
    return load_model(ModelConfig(name_or_path="tiny:gpt2", seed=3))


def test_batched_left_padded_greedy_matches_one_by_one(gpt2) -> None:
    prompts = ["Title: short\n\nTL;DR:", "Title: a much longer title with many more words in it\n\nText: and a body too\n\nTL;DR:"]
    greedy = SamplingConfig(do_sample=False, max_new_tokens=10, batch_size=2)
    batched, stats = generate_outputs(gpt2, RAW, prompts, 1, greedy, seed=0)
    for index, prompt in enumerate(prompts):
        ids = gpt2.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            full = gpt2.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False)
        alone = gpt2.tokenizer.decode(full[0, ids.shape[1] :], skip_special_tokens=True).strip()
        assert batched[index] == [alone]  # same text, and the prompt itself is not part of the output
    assert stats.prompts == 2 and stats.outputs == 2 and stats.new_tokens > 0


def test_n_outputs_per_prompt_and_sampling_is_seeded(gpt2) -> None:
    sampling = SamplingConfig(max_new_tokens=8, batch_size=2, max_resamples=0)
    prompts = ["one:", "two two:", "three three three:"]
    first, _ = generate_outputs(gpt2, RAW, prompts, 4, sampling, seed=11)
    again, _ = generate_outputs(gpt2, RAW, prompts, 4, sampling, seed=11)
    other, _ = generate_outputs(gpt2, RAW, prompts, 4, sampling, seed=12)
    assert sorted(first) == [0, 1, 2] and all(len(v) == 4 for v in first.values())
    assert first == again and first != other


class _Constant(TemplateTask):
    """Post-processing that maps every generation to one text, so all but one slot are duplicates."""

    def postprocess(self, text: str) -> str:
        return "same."


class _Reject(TemplateTask):
    def postprocess(self, text: str) -> str:
        return ""


def test_duplicates_and_empties_are_resampled_up_to_the_limit(gpt2) -> None:
    sampling = SamplingConfig(max_new_tokens=6, batch_size=4, max_resamples=2)
    outputs, stats = generate_outputs(gpt2, _Constant(), ["a:", "b:"], 3, sampling, seed=0)
    assert stats.resampled == 2 * 2 * 2  # 2 prompts x 2 duplicate slots x 2 rounds
    assert outputs[0] == ["same.", "same.", "same."]  # the limit reached, duplicates are kept
    outputs, stats = generate_outputs(gpt2, _Reject(stop_at_newline=True), ["a:"], 2, sampling, seed=0)
    assert stats.fallbacks == 2 and stats.resampled == 4
    assert all(isinstance(t, str) for t in outputs[0])


def test_seq2seq_generation() -> None:
    t5 = load_model(ModelConfig(name_or_path="tiny:t5"))
    assert t5.is_seq2seq
    outputs, stats = generate_outputs(
        t5, RAW, ["summarize: x", "summarize: a longer input"], 2, SamplingConfig(max_new_tokens=5, max_resamples=0), 0
    )
    assert [len(outputs[i]) for i in (0, 1)] == [2, 2] and stats.new_tokens > 0


def test_greedy_with_several_outputs_decodes_once_and_repeats(gpt2) -> None:
    greedy = SamplingConfig(do_sample=False, max_new_tokens=6, batch_size=2, share_prompt=False)
    outputs, stats = generate_outputs(gpt2, RAW, ["a b:", "c:"], 3, greedy, seed=0)
    alone, _ = generate_outputs(gpt2, RAW, ["a b:", "c:"], 1, greedy, seed=0)
    assert outputs[0] == alone[0] * 3 and outputs[1] == alone[1] * 3


def test_outputs_a_metric_reads_as_independent_draws_are_never_drawn_again(gpt2) -> None:
    # pass@k assumes independent samples: drawing a duplicate again would raise the share of distinct (and passing) programs.
    from ilf.records import Sample
    from ilf.steps import evaluation_outputs

    sampling = SamplingConfig(max_new_tokens=6, batch_size=4, max_resamples=2)
    samples = [Sample(id="a", inputs={"input": "a"}), Sample(id="b", inputs={"input": "b"})]
    kept, info = evaluation_outputs(gpt2, samples, _Constant(), sampling, 0, "policy", num_samples=3, independent=True)
    assert [o.text for o in kept] == ["same."] * 6 and info["generation"]["resampled"] == 0
    _, drawn_again = evaluation_outputs(gpt2, samples, _Constant(), sampling, 0, "policy", num_samples=3)
    assert drawn_again["generation"]["resampled"] == 2 * 2 * 2


def test_pass_at_k_makes_the_evaluate_stage_keep_duplicates() -> None:
    from ilf.metrics import get_metrics

    assert [m.independent_samples for m in get_metrics(["pass_at_k", "rouge"])] == [True, False]


def test_several_greedy_outputs_per_sample_are_a_config_error_naming_the_key() -> None:
    from ilf.config import load_config

    with pytest.raises(ValueError, match="field 'evaluation.num_samples': 10 outputs per sample with greedy decoding"):
        load_config(None, ["evaluation.num_samples=10"])
    assert load_config(None, ["evaluation.num_samples=10", "evaluation.sampling.do_sample=true"]).evaluation.num_samples == 10
