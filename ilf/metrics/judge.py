"""Win rate against the references (or another system) as an LM judge sees it, both orders asked.

Why: the paper's headline number is a pairwise win rate against human-written summaries, judged
by people; without a panel, an LM judge estimates it. LM judges tend to prefer whichever text is
shown in one position, so every pair is judged twice, once in each order, a pair scoring the mean
of its two verdicts (win 1, tie 1/2, loss 0), and the metric reports how often the verdict
followed the position instead of the text, rather than hiding it. Where people compared pairs
(the run's comparisons, or ``metric_options.judge_win_rate.human``), the judge judges the same pairs and its
agreement with them is reported, so a reader can see how far to trust it.

Judges (``metric_options.judge_win_rate``): a local LM, which answers by the log-probs of the two answers
after the prompt; an LM behind an OpenAI-compatible server, which answers with a few greedily decoded
tokens that are parsed (an unparseable answer is a tie, and counted); and the facts world's
simulated annotator, whose preferences are known exactly.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ilf import reads
from ilf.config import ModelConfig, RunConfig, SamplingConfig, option
from ilf.evaluation import mean_and_sem
from ilf.labelstudio.summary import cohens_kappa
from ilf.metrics import Metric
from ilf.records import Comparison, Output, Sample, format_inputs, read_records
from ilf.registry import METRICS
from ilf.schema import SchemaError

if TYPE_CHECKING:
    from ilf.generate import Sampler
    from ilf.models import LoadedModel
    from ilf.view import RunView

JUDGE_PROMPTS = Path(__file__).parent / "judge_prompts"  # packaged prompts, named without .txt


def judge_prompt_path(prompt: str) -> Path:
    """The file a judge prompt names: a packaged one (``pairwise``) or a path."""
    packaged = JUDGE_PROMPTS / f"{prompt}.txt"
    return packaged if "/" not in prompt and packaged.is_file() else Path(prompt).expanduser()


def judge_opponent_is_file(against: str) -> bool:
    """Whether ``metric_options.judge_win_rate.against`` names an outputs file (not references or a system)."""
    return against.endswith(".jsonl") or "/" in against


@dataclass
class JudgeOptions:
    """The LM judge of the judge_win_rate metric: which of two texts for one input is better."""

    kind: str = option(
        "model",
        "model: an LM (judge.model) asked which text is better; annotator: the facts world's simulated annotator, "
        "a judge whose answers are known (facts world only).",
    )
    model: ModelConfig | None = option(
        None, "The judge model when kind is model: hub id or local folder, or backend: openai with remote: for a server."
    )
    prompt: str = option(
        "pairwise",
        "The judge prompt: a packaged one (pairwise, facts) or the path of a text file with {inputs} (or the input fields "
        "by name), {first} and {second}; it must end where the answer starts.",
        path=True,
    )
    answers: list[str] = option(
        help="What the judge answers to pick the first-shown text and the second (the packaged prompts name them A and B).",
        factory=lambda: [" A", " B"],
    )
    mode: str = option(
        "auto",
        "logprobs: compare the log-probs of the two answers after the prompt (local models); generate: decode max_answer_tokens "
        "greedily and parse the answer (an unparseable one is a tie, counted); auto: logprobs locally, generate on a server.",
    )
    tie_margin: float = option(0.0, "logprobs: a log-prob difference at or below this is a tie.")
    max_answer_tokens: int = option(3, "generate: tokens decoded for the answer.")
    batch_size: int = option(8, "Prompts per forward pass or generate call.")
    against: str = option(
        "references",
        "What each system's output is compared with: references (the sample's first one), another system of the run "
        "evaluated earlier (base), or the path of an outputs JSONL.",
        path=True,
    )
    against_system: str | None = option(
        None,
        "When against is an outputs file holding several systems (base and finetuned, say): the system "
        "whose outputs are compared with; required then.",
    )
    human: str | None = option(
        None,
        "Comparisons JSONL by people whose pairs the judge also judges (agreement, Cohen's kappa); default the run's "
        "comparisons by anyone but the simulated annotator, if it has any.",
        path=True,
    )

    def __post_init__(self) -> None:
        if self.kind not in ("model", "annotator"):
            raise SchemaError(None, None, "kind", f"must be model or annotator, got {self.kind!r}")
        if self.mode not in ("auto", "logprobs", "generate"):
            raise SchemaError(None, None, "mode", f"must be auto, logprobs or generate, got {self.mode!r}")
        if self.kind == "model" and self.model is not None and self.model.backend == "openai" and self.mode == "logprobs":
            raise SchemaError(None, None, "mode", "logprobs needs a local model; a server's judge answers by generating (mode: generate)")
        if not judge_prompt_path(self.prompt).is_file():
            raise SchemaError(
                None,
                None,
                "prompt",
                f"no such file {self.prompt!r} (packaged prompts: {', '.join(sorted(p.stem for p in JUDGE_PROMPTS.glob('*.txt')))})",
            )
        if len(self.answers) != 2 or not all(a.strip() for a in self.answers) or self.answers[0].strip() == self.answers[1].strip():
            raise SchemaError(None, None, "answers", f"must be two different non-empty answers, got {self.answers!r}")
        if self.tie_margin < 0:
            raise SchemaError(None, None, "tie_margin", f"must be >= 0, got {self.tie_margin}")
        for name in ("max_answer_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise SchemaError(None, None, name, f"must be at least 1, got {getattr(self, name)}")
        if judge_opponent_is_file(self.against):
            if not Path(self.against).expanduser().is_file():
                raise SchemaError(None, None, "against", f"no such outputs file {self.against!r}")
            self._check_against_system()
        elif self.against_system is not None:
            raise SchemaError(None, None, "against_system", f"names a system of an outputs file, but against is {self.against!r}")
        elif not self.against.replace("_", "").replace("-", "").isalnum():
            raise SchemaError(
                None,
                None,
                "against",
                f"must be references, the name of a system of the run (base), or an outputs .jsonl, got {self.against!r}",
            )
        if self.human is not None and not Path(self.human).expanduser().is_file():
            raise SchemaError(None, None, "human", f"no such comparisons file {self.human!r}")

    def _check_against_system(self) -> None:
        from ilf.records import Output, read_records  # records is light, but config is read before anything else

        systems = list(dict.fromkeys(o.system for o in read_records(Path(self.against).expanduser(), Output)))
        if self.against_system is None and len(systems) > 1:
            raise SchemaError(
                None,
                None,
                "against_system",
                f"{self.against} holds the outputs of {len(systems)} systems ({', '.join(systems)}): name the one to compare with",
            )
        if self.against_system is not None and self.against_system not in systems:
            raise SchemaError(
                None,
                None,
                "against_system",
                f"{self.against} holds no outputs of system {self.against_system!r} (it has {', '.join(systems)})",
            )


OPTIONS_KEY = "metric_options.judge_win_rate"

FIRST, SECOND, TIE = "first", "second", "tie"
UNPARSED = "unparsed"  # a model's answer that names neither text: scored as a tie, and counted
_PICKED_FIRST = {FIRST: 1.0, TIE: 0.5, UNPARSED: 0.5, SECOND: 0.0}


@dataclass(frozen=True)
class Pair:
    sample: Sample
    first: str
    second: str


class Judge(Protocol):
    def verdicts(self, pairs: list[Pair]) -> list[str]:
        """FIRST, SECOND, TIE or UNPARSED for each pair, in order."""
        ...


class AnnotatorJudge:
    """The facts world's annotator as a measure: its honest overall preference, without the noise of
    its feedback (a metric measures; it is nobody's training signal), so every verdict is known in advance."""

    def verdicts(self, pairs: list[Pair]) -> list[str]:
        from ilf.demo import world

        picks = {"a": FIRST, "b": SECOND, "tie": TIE}
        return [picks[world.preference(world.post_from_sample(p.sample), p.first, p.second)] for p in pairs]


def read_prompt(prompt: str) -> str:
    # An editor's final newline would put the answer on a line of its own.
    reads.note_file(judge_prompt_path(prompt))
    return judge_prompt_path(prompt).read_text(encoding="utf-8").rstrip("\n")


def parse_answer(reply: str, answers: list[str]) -> str:
    """FIRST or SECOND if the reply starts with that answer (as a whole word), else UNPARSED."""
    text = reply.lstrip(" \t\n\"'*([")
    for verdict, answer in zip((FIRST, SECOND), answers):
        label = answer.strip()
        if text.startswith(label) and not text[len(label) : len(label) + 1].isalnum():
            return verdict
    return UNPARSED


class ModelJudge:
    """An LM asked the prompt; answers by log-probs (local) or by decoding a few tokens (any backend)."""

    def __init__(self, config: JudgeOptions, model: ModelConfig) -> None:
        from ilf.models import load_model

        self.config = config
        self.template = read_prompt(config.prompt)
        self.mode = config.mode if config.mode != "auto" else ("generate" if model.backend == "openai" else "logprobs")
        field = f"{OPTIONS_KEY}.model.name_or_path"
        self.lm: LoadedModel | None = None
        self.sampler: Sampler | None = None
        if self.mode == "logprobs":
            if model.backend != "local":
                raise ValueError("metric_options.judge_win_rate.mode: logprobs needs a local model; a server's judge answers by generating")
            self.lm = load_model(model, field=field)
            if self.lm.is_seq2seq:
                raise ValueError(f"{field}: mode logprobs needs a decoder-only judge; use mode: generate for {model.name_or_path!r}")
            # Whole answers, not first tokens: a small vocabulary splits " A" into a space and "A".
            self.answer_ids = [self.lm.tokenizer(a, add_special_tokens=False)["input_ids"] for a in config.answers]
            if not all(self.answer_ids):
                raise ValueError(
                    f"metric_options.judge_win_rate.answers: the judge's tokenizer encodes one of {config.answers!r} to nothing"
                )
        else:
            from ilf.generate import as_sampler

            self.sampler = as_sampler(load_model(model, field=field) if model.backend == "local" else model)

    def prompt(self, pair: Pair) -> str:
        try:
            fields = {**pair.sample.inputs, "inputs": format_inputs(pair.sample.inputs), "first": pair.first, "second": pair.second}
            return self.template.format_map(fields)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"metric_options.judge_win_rate.prompt: {judge_prompt_path(self.config.prompt)}: cannot fill the template ({type(err).__name__}: {err}); "
                f"it may use {{inputs}}, {{first}}, {{second}} and the input fields {', '.join(pair.sample.inputs)}"
            ) from None

    def verdicts(self, pairs: list[Pair]) -> list[str]:
        prompts = [self.prompt(p) for p in pairs]
        if self.mode == "logprobs":
            margins = [first - second for first, second in self._answer_logprobs(prompts)]
            margin = self.config.tie_margin
            return [FIRST if m > margin else SECOND if m < -margin else TIE for m in margins]
        assert self.sampler is not None
        greedy = SamplingConfig(do_sample=False, max_new_tokens=self.config.max_answer_tokens, batch_size=self.config.batch_size)
        size = self.sampler.batch_size or self.config.batch_size
        replies: list[str] = []
        for start in range(0, len(prompts), size):
            texts, _ = self.sampler.sample(prompts[start : start + size], 1, greedy, seed=0)
            replies.extend(t[0] for t in texts)
        return [parse_answer(r, self.config.answers) for r in replies]

    def _answer_logprobs(self, prompts: list[str]) -> list[tuple[float, float]]:
        """log p(answer | prompt) of each of the two answers, for each prompt."""
        import torch  # here, not at the top: the config check imports this module, and needs no torch

        with torch.inference_mode():
            return self._answer_logprobs_of(torch, prompts)

    def _answer_logprobs_of(self, torch: Any, prompts: list[str]) -> list[tuple[float, float]]:
        assert self.lm is not None
        tokenizer, model = self.lm.tokenizer, self.lm.model
        # Prompt and answer are encoded apart and joined, so the answer's tokens are the same after every prompt.
        rows = [p + a for p in tokenizer(prompts, add_special_tokens=False)["input_ids"] for a in self.answer_ids]
        lengths = [len(a) for _ in prompts for a in self.answer_ids]
        totals: list[float] = []
        size = 2 * self.config.batch_size
        # Only the answer's positions are scored: logits for every prompt position would be rows x
        # length x vocabulary floats (tens of GB for a 150k vocabulary and SLF5K-long prompts).
        keep_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            width = max(len(r) for r in batch)
            ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(r)) + r for r in batch], device=self.lm.device)
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in batch], device=self.lm.device)
            # Positions count from each row's first real token, as if it were not padded on the left.
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            keep = max(lengths[start : start + size]) + 1  # the answers are every row's last tokens (left padding)
            extra = {"logits_to_keep": keep} if keep_logits else {}
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, **extra).logits[:, -keep:].float()
            token_logprobs = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, -keep + 1 :].unsqueeze(-1)).squeeze(-1)
            for row, length in enumerate(lengths[start : start + size]):
                totals.append(float(token_logprobs[row, -length:].sum()))
        return [(totals[i], totals[i + 1]) for i in range(0, len(totals), 2)]


def build_judge(config: JudgeOptions, model: ModelConfig | None = None) -> Judge:
    """The judge a config describes; ``model`` is ``config.model`` resolved (``pretrained``, say)."""
    if config.kind == "annotator":
        return AnnotatorJudge()
    model = model or config.model
    if model is None:
        raise ValueError(
            "metric_options.judge_win_rate.model: the judge_win_rate metric needs a judge model (or metric_options.judge_win_rate.kind: annotator)"
        )
    return ModelJudge(config, model)


def judge_both_orders(judge: Judge, samples: list[Sample], texts: list[str], opponents: list[str]) -> tuple[list[str], list[str]]:
    """Verdicts with each text shown first, then with its opponent shown first (one call to the judge)."""
    pairs = [Pair(s, t, o) for s, t, o in zip(samples, texts, opponents)]
    verdicts = judge.verdicts(pairs + [Pair(p.sample, p.second, p.first) for p in pairs])
    return verdicts[: len(pairs)], verdicts[len(pairs) :]


def summarize_verdicts(forward: list[str], backward: list[str]) -> dict[str, Any]:
    """The metric's figures from the verdicts with the system's text first (forward) and second."""
    scores = [(_PICKED_FIRST[f] + 1.0 - _PICKED_FIRST[b]) / 2 for f, b in zip(forward, backward)]
    # The same position picked in both orders: the verdict followed the order, not the texts.
    followed_position = sum(f == b and f in (FIRST, SECOND) for f, b in zip(forward, backward))
    verdicts = forward + backward
    decisive = [v for v in verdicts if v in (FIRST, SECOND)]
    rate, sem = mean_and_sem(scores)
    return {
        "judge_win_rate": rate,
        "judge_win_rate_sem": sem,
        "judge_ties": sum(v in (TIE, UNPARSED) for v in verdicts) / len(verdicts) if verdicts else None,
        "judge_unparsed": sum(v == UNPARSED for v in verdicts) / len(verdicts) if verdicts else None,
        "judge_position_bias": followed_position / len(scores) if scores else None,
        "judge_first_preferred": sum(v == FIRST for v in decisive) / len(decisive) if decisive else None,
        "judge_pairs": len(scores),
    }


def judge_agreement(judge: Judge, comparisons: list[Comparison], samples: dict[str, Sample]) -> dict[str, Any]:
    """How often the judge (both orders, averaged) picks what people picked; ties on either side are left out and counted."""
    pairs = [c for c in comparisons if c.sample_id in samples]
    forward, backward = judge_both_orders(judge, [samples[c.sample_id] for c in pairs], [c.a for c in pairs], [c.b for c in pairs])
    decided: list[tuple[str, str]] = []
    for comparison, f, b in zip(pairs, forward, backward):
        for_a = (_PICKED_FIRST[f] + 1.0 - _PICKED_FIRST[b]) / 2
        pick = "a" if for_a > 0.5 else "b" if for_a < 0.5 else "tie"
        if comparison.preferred != "tie" and pick != "tie":
            decided.append((comparison.preferred, pick))
    return {
        "judge_human_pairs": len(pairs),
        "judge_human_ties": len(pairs) - len(decided),
        "judge_human_agreement": sum(h == j for h, j in decided) / len(decided) if decided else None,
        "judge_human_kappa": cohens_kappa(decided),
    }


@METRICS.register(
    "judge_win_rate",
    help="Win rate against the first reference (or metric_options.judge_win_rate.against) as an LM judge or the facts world's annotator "
    "sees it, both orders asked ± SEM; also ties, position bias and agreement with people's comparisons (metric_options.judge_win_rate).",
)
class JudgeWinRate(Metric):
    Options = JudgeOptions
    moved = {"evaluation.judge": "{options}"}
    columns = ("judge_win_rate", "judge_position_bias")  # the bias beside the rate it may distort

    def __init__(self) -> None:
        self._judge: Judge | None = None
        self._seen: dict[str, dict[str, str]] = {}  # system -> sample id -> output, for against: <system>
        self._settings: JudgeOptions | None = None

    def settings(self, run: RunView) -> JudgeOptions:
        """This run's judge options, built once (checking them reads an ``against`` outputs file)."""
        if self._settings is None:
            self._settings = self.options(run.config)
        return self._settings

    @classmethod
    def check_config(cls, config: RunConfig) -> None:
        options = cls.options(config)
        if options.kind == "model" and options.model is None:
            raise SchemaError(None, None, f"{OPTIONS_KEY}.model", "the judge_win_rate metric needs a judge model (or kind: annotator)")

    def judge(self, run: RunView) -> Judge:
        if self._judge is None:
            config = self.settings(run)
            self._judge = build_judge(config, run.resolve(config.model) if config.model is not None else None)
        return self._judge

    def _opponents(self, run: RunView, system: str, samples: list[Sample]) -> dict[str, str] | None:
        against = self.settings(run).against
        if against == "references":
            return {s.id: s.references[0] for s in samples if s.references}
        if judge_opponent_is_file(against):
            wanted = self.settings(run).against_system  # required when the file holds several systems (checked at load)
            opponents: dict[str, str] = {}
            for output in read_records(against, Output):
                if wanted is None or output.system == wanted:
                    opponents.setdefault(output.sample_id, output.text)
            return opponents
        if against == system:
            return None  # the system the others are judged against
        if against not in self._seen:
            order = ", ".join(run.method.systems(run))
            raise ValueError(
                f"metric_options.judge_win_rate.against: system {against!r} is not evaluated before {system!r} (this run evaluates {order}, "
                "in that order; base needs evaluation.include_base: true)"
            )
        return self._seen[against]

    def score_outputs(self, run: RunView | None, samples: list[Sample], outputs: list[Output]) -> dict[str, Any]:
        if run is None:
            raise ValueError(
                "evaluation.metrics: judge_win_rate reads metric_options.judge_win_rate of a run; use it in `ilf run` or `ilf study`"
            )
        system = outputs[0].system if outputs else "policy"
        mine = {o.sample_id: o.text for o in outputs}
        self._seen[system] = mine
        opponents = self._opponents(run, system, samples)
        if opponents is None:
            return {}
        judged = [s for s in samples if s.id in mine and s.id in opponents]
        if not judged:
            against = self.settings(run).against
            raise ValueError(
                f"metric_options.judge_win_rate.against: {against!r} gives no text to compare with for any of the {len(samples)} samples"
            )
        forward, backward = judge_both_orders(self.judge(run), judged, [mine[s.id] for s in judged], [opponents[s.id] for s in judged])
        return summarize_verdicts(forward, backward)

    def score_round(self, run: RunView) -> dict[str, Any]:
        human = self.settings(run).human
        if human is not None:
            comparisons = read_records(human, Comparison)
        elif "comparisons" in run.stages and run.paths.comparisons.exists():
            comparisons = [c for c in run.comparisons() if c.annotator != "simulated"]  # the annotator is no person
        else:
            comparisons = []
        if not comparisons:
            return {}
        samples = {s.id: s for s in [*run.samples(), *read_records(run.paths.eval_samples, Sample)]}
        unknown = sorted({c.sample_id for c in comparisons} - set(samples))
        if unknown:
            where = human or run.paths.comparisons
            raise ValueError(
                f"metric_options.judge_win_rate.human: {where}: sample ids {', '.join(unknown[:3])} are not samples of this run"
            )
        return judge_agreement(self.judge(run), comparisons, samples)
