"""The ranking-RLHF baseline's parts on tiny models: reward model, best-of-N, DPO, RLOO."""

from pathlib import Path

import pytest
import torch

from ilf.best_of_n import best_of_n
from ilf.config import ModelConfig, SamplingConfig, TaskConfig, load_config
from ilf.records import Comparison, Sample
from ilf.selection import SelectionItem, select
from ilf.tasks import get_task
from ilf.train.preference import DPOTrainingConfig, dpo_pairs, preference_margin, train_dpo
from ilf.train.reward import RewardModel, RewardTrainingConfig, load_classifier, preference_pairs, train_reward_model

TASK = get_task(TaskConfig())
SAMPLES = [Sample(id=f"s{i}", inputs={"title": f"case {i}", "post": f"story number {i}."}) for i in range(40)]
# Clearly separable: the preferred summary is a sentence, the other a repeated word.
COMPARISONS = [
    Comparison(sample_id=s.id, a=f"The story {i} is summarised here.", b="dog dog dog dog dog", preferred="a" if i % 2 else "b")
    for i, s in enumerate(SAMPLES)
]
COMPARISONS = [c if c.preferred == "a" else Comparison(c.sample_id, a=c.b, b=c.a, preferred="b") for c in COMPARISONS]


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rm") / "reward"
    pairs = preference_pairs(TASK, SAMPLES, COMPARISONS)
    metrics = train_reward_model(
        ModelConfig(name_or_path="tiny:gpt2", seed=2),
        pairs[:32],
        RewardTrainingConfig(learning_rate=1e-3, num_train_epochs=3, per_device_train_batch_size=8),
        out,
        eval_pairs=pairs[32:],
    )
    assert metrics["eval_pairs"] == 8
    return out


def test_reward_model_learns_a_separable_preference(reward_dir: Path) -> None:
    pairs = preference_pairs(TASK, SAMPLES, COMPARISONS)
    assert all("The story" in p["chosen"] and "dog dog" in p["rejected"] for p in pairs)  # a/b order resolved
    untrained = RewardModel(*load_classifier(ModelConfig(name_or_path="tiny:gpt2", seed=2)))
    trained = RewardModel.load(reward_dir)
    assert trained.accuracy(pairs[32:]) == 1.0
    gap_before = sum(untrained.score([p["chosen"]])[0] - untrained.score([p["rejected"]])[0] for p in pairs[32:])
    gap_after = sum(trained.score([p["chosen"]])[0] - trained.score([p["rejected"]])[0] for p in pairs[32:])
    assert gap_after > gap_before + 1.0
    ties = [Comparison("s0", "x.", "y.", "tie")]
    assert preference_pairs(TASK, SAMPLES, ties) == []


def test_best_of_n_returns_the_reward_models_argmax(reward_dir: Path) -> None:
    reward = RewardModel.load(reward_dir)
    sampling = SamplingConfig(max_new_tokens=8, batch_size=4, max_resamples=0)
    result = best_of_n(ModelConfig(name_or_path="tiny:gpt2"), reward, TASK, SAMPLES[:3], 4, sampling, seed=1)
    for sample, output, texts, scores in zip(SAMPLES[:3], result.outputs, result.candidates, result.scores):
        assert len(texts) == 4
        assert output.text == texts[max(range(4), key=scores.__getitem__)]
        rescored = reward.score([TASK.initial_prompt(sample) + TASK.completion(t) for t in texts])
        assert rescored == pytest.approx(scores, abs=1e-5) and output.extra["reward"] == pytest.approx(max(rescored), abs=1e-5)


def test_reward_model_selector_picks_the_highest_reward(reward_dir: Path) -> None:
    item = SelectionItem(
        sample=SAMPLES[0],
        output="dog dog",
        feedback="write a sentence",
        candidates=["dog dog dog dog dog", "The story 0 is summarised here.", "dog dog"],
    )
    config = load_config(None, ["selection.method=reward_model", f"selection_options.reward_model.path={reward_dir}"])
    (chosen,) = select([item], config, TASK)
    assert chosen.index == 1 and chosen.selector == "reward_model"
    assert chosen.candidates[1].scores["reward_model"] > max(
        chosen.candidates[0].scores["reward_model"], chosen.candidates[2].scores["reward_model"]
    )


def test_dpo_raises_the_chosen_minus_rejected_margin(tmp_path: Path) -> None:
    rows = dpo_pairs(TASK, SAMPLES[:16], COMPARISONS[:16])
    metrics = train_dpo(
        ModelConfig(name_or_path="tiny:gpt2", seed=4),
        rows,
        DPOTrainingConfig(learning_rate=5e-3, beta=0.1, num_train_epochs=2, per_device_train_batch_size=8),
        tmp_path / "dpo",
    )
    assert metrics["margin_after"] > metrics["margin_before"] + 1.0, metrics
    from ilf.models import load_model

    saved = load_model(ModelConfig(name_or_path=str(tmp_path / "dpo")))
    assert preference_margin(saved.model, saved.tokenizer, rows) == pytest.approx(metrics["margin_after"], rel=1e-3)


def test_rloo_runs_steps_and_changes_the_policy(reward_dir: Path, tmp_path: Path) -> None:
    from ilf.models import load_model
    from ilf.train.online import RLOOTrainingConfig, train_rloo

    policy = ModelConfig(name_or_path="tiny:gpt2", seed=6)
    before = {k: v.clone() for k, v in load_model(policy).model.named_parameters()}
    prompts = [TASK.initial_prompt(s) for s in SAMPLES[:8]]
    metrics = train_rloo(
        policy,
        prompts,
        reward_dir,
        RLOOTrainingConfig(learning_rate=1e-3, num_generations=2, max_completion_length=8, per_device_train_batch_size=4, max_steps=2),
        tmp_path / "rloo",
    )
    assert metrics["steps"] == 2 and len(metrics["rewards"]) == 2
    after = dict(load_model(ModelConfig(name_or_path=str(tmp_path / "rloo"))).model.named_parameters())
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert changed


def test_reward_model_with_lora_is_merged_into_a_plain_classifier(tmp_path: Path) -> None:
    from ilf.config import LoraConfig

    pairs = preference_pairs(TASK, SAMPLES, COMPARISONS)
    metrics = train_reward_model(
        ModelConfig(name_or_path="tiny:gpt2", seed=2),
        pairs[:32],
        RewardTrainingConfig(
            learning_rate=5e-3,
            num_train_epochs=3,
            per_device_train_batch_size=8,
            lora=LoraConfig(r=8, alpha=16, dropout=0.0, target_modules=["c_attn"]),
        ),
        tmp_path / "rm",
        eval_pairs=pairs[32:],
    )
    assert metrics["eval_accuracy"] >= 0.75, metrics
    reloaded = RewardModel.load(tmp_path / "rm")
    assert not any("lora" in name for name, _ in reloaded.model.named_parameters())
    assert reloaded.accuracy(pairs[32:]) == metrics["eval_accuracy"]


def test_reward_scores_are_read_at_the_end_of_sequence_token_training_appends(reward_dir: Path) -> None:
    """TRL's RewardTrainer trains on text + EOS; a score read without it comes from another position."""
    trained = RewardModel.load(reward_dir)
    eos = trained.tokenizer.eos_token
    texts = ["The story 3 is summarised here.", "dog dog dog dog dog"]
    assert trained.score(texts) == pytest.approx(trained.score([t + eos for t in texts]), abs=1e-6)
    raw = trained.tokenizer(texts[:1], return_tensors="pt")  # the position the model was not trained to score
    with torch.inference_mode():
        without_eos = trained.model(**raw).logits[0, 0].item()
    assert abs(without_eos - trained.score(texts[:1])[0]) > 1e-3


def test_reward_head_does_not_depend_on_what_ran_before(tmp_path: Path) -> None:
    """A study trains the reward model in whichever cell comes first: its new head must not take
    its initial weights from the random state that earlier work left behind."""
    from ilf.train.reward import build_reward_trainer

    pairs = preference_pairs(TASK, SAMPLES, COMPARISONS)[:8]
    config = RewardTrainingConfig(per_device_train_batch_size=4, seed=5)
    model = ModelConfig(name_or_path="tiny:gpt2", seed=2)
    first = build_reward_trainer(model, pairs, config, tmp_path / "a").model.score.weight.detach().clone()
    torch.rand(1000)  # other work in the same process
    second = build_reward_trainer(model, pairs, config, tmp_path / "b").model.score.weight.detach().clone()
    assert torch.equal(first, second)
