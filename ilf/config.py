"""One config describes one run: dataclasses loaded from YAML, with ``--set key=value`` overrides.

Every field carries its help text in ``metadata["help"]``; ``ilf config --help-fields`` prints them.
An unknown key or a value of the wrong type fails with the config file and the dotted key named.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ilf.reads import Recorded, as_plain
from ilf.schema import SchemaError, build, sections


class ConfigError(SchemaError):
    """A config that does not fit the schema; names the file and the dotted key."""


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    factory: Any = dataclasses.MISSING,
    added: bool = False,
    path: bool = False,
    contents: bool = True,
) -> Any:
    """A config field with its help text: ``option(default, help)``, or ``option(factory=f,
    help=...)`` for a default made afresh by calling ``f`` for each instance
    (``factory=lambda: ["the", "is"]``, ``factory=dict``, ``factory=SamplingConfig``).

    A default that cannot be shared between instances (a list, dict or set: anything unhashable)
    is copied for each one, as ``factory`` would make it, so ``option(["the"], help)`` is safe too;
    a bare ``dataclasses.field`` would refuse it.

    ``added``: a field that changes nothing at its default, added after cached world models
    existed; at its default it is left out of their cache's names. ``path``: its value names a file
    or folder, which a config file may give relative to its own folder, and a stage that reads it
    depends on the content there (``contents=False``: only on the name, for a folder that merely
    holds things, such as a cache)."""
    metadata = {"help": help, "added": added, "path": path, "contents": contents}
    if factory is dataclasses.MISSING and default is not dataclasses.MISSING and type(default).__hash__ is None:
        import copy
        import functools

        factory = functools.partial(copy.deepcopy, default)  # one object per instance: a change to one is no other's
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class RemoteConfig(Recorded):
    base_url: str = option("http://127.0.0.1:8000/v1", "OpenAI-compatible API root (vLLM, TGI, transformers serve), ending in /v1.")
    api_key_env: str | None = option(None, "Environment variable holding the API key; the key itself never goes in a config.")
    concurrency: int = option(8, "Requests in flight at once.")
    timeout: float = option(300.0, "Seconds one request may take.")
    max_retries: int = option(5, "Retries of a request after a timeout, 429 or 5xx, with exponential backoff.")


@dataclass
class ModelConfig(Recorded):
    name_or_path: str = option(
        "tiny:gpt2",
        "Hub id, local path, tiny:<gpt2|llama|t5> for a random tiny model, or shape:<qwen2.5-0.5b|qwen2.5-1.5b|qwen2.5-7b> for random weights at a real model's shape.",
        path=True,
    )
    kind: str = option("auto", "auto, causal or seq2seq; auto reads the model config.")
    dtype: str = option(
        "auto",
        "auto, float32, bfloat16 or float16; auto is bfloat16 on a GPU that has it, and on a CPU measured faster in it "
        "(once per machine) for generation and scoring, while training on a CPU stays float32.",
    )
    device: str = option("auto", "auto (cuda when present), cpu, cuda, cuda:N or mps.")
    adapter: str | None = option(None, "Path or hub id of a LoRA adapter loaded on top of the model.", path=True)
    trust_remote_code: bool = option(False, "Passed to from_pretrained.")
    seed: int = option(0, "Seed of the random weights of a tiny:* model.")
    backend: str = option("local", "Where generation runs: local (this process) or openai (a server speaking the OpenAI API).")
    remote: RemoteConfig = option(
        help="The server, when backend is openai; name_or_path is the model name it serves.", factory=RemoteConfig
    )


@dataclass
class TaskConfig(Recorded):
    name: str = option("summarization", "A registered task (summarization, template, ...).")
    options: dict[str, Any] = option(help="Task options, e.g. the prompt templates of the template task.", factory=dict)


@dataclass
class DataConfig(Recorded):
    loader: str = option("slf5k", "A registered data loader (`ilf plugins`) or module.path:function.")
    path: str = option("JeremyAlain/SLF5K", "Hub dataset id, a local file, or a folder holding <split>.jsonl.", path=True)
    split: str = option("train", "Split the feedback round uses.")
    limit: int | None = option(
        100,
        "Keep the first N rows of the split; null reads them all. The default, 100, cuts a longer file (a log line says "
        "so): the SLF5K study's nested 100 / 1K / 5K subsets are the first rows.",
    )
    offset: int = option(0, "Skip the first N rows of the split first (round k of a multi-round run takes fresh rows this way).")
    eval_split: str = option("test", "Held-out split for evaluation.")
    eval_path: str | None = option(None, "Read the evaluation split from here instead of `path`.", path=True)
    eval_limit: int | None = option(
        None, "Keep the first N evaluation rows; null (the default) reads them all. A log line says when it cuts a file."
    )
    fields: dict[str, Any] = option(
        help="Field mapping of the jsonl/csv loaders: id, inputs (a list or a mapping), initial_output, references (a list), feedback.",
        factory=dict,
    )


@dataclass
class FeedbackConfig(Recorded):
    source: str = option(
        "dataset", "A registered feedback source (`ilf plugins`: dataset, file, labelstudio, simulated) or module.path:Class."
    )


@dataclass
class SamplingConfig(Recorded):
    do_sample: bool = option(True, "Sample (true) or decode greedily (false).")
    temperature: float = option(1.0, "Sampling temperature.")
    top_p: float = option(0.95, "Nucleus sampling mass.")
    max_new_tokens: int = option(48, "Tokens generated per output.")
    batch_size: int = option(32, "Prompts per generate call (each with all of its samples).")
    max_prompt_tokens: int | None = option(None, "Keep only the last N prompt tokens (the cue is at the end).")
    max_resamples: int = option(3, "Extra attempts for outputs that are empty or duplicates after post-processing.")
    share_prompt: bool = option(True, "Encode each prompt once and share its keys and values across its samples (decoder-only models).")

    def __post_init__(self) -> None:
        # Checked when the config loads, not when generation reaches the bad value minutes later.
        if self.temperature <= 0 and self.do_sample:
            raise SchemaError(None, None, "temperature", f"must be > 0 when do_sample is true, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise SchemaError(None, None, "top_p", f"must be in (0, 1], got {self.top_p}")
        for name in ("max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise SchemaError(None, None, name, f"must be at least 1, got {getattr(self, name)}")
        if self.max_resamples < 0:
            raise SchemaError(None, None, "max_resamples", f"must be >= 0, got {self.max_resamples}")
        if self.max_prompt_tokens is not None and self.max_prompt_tokens < 1:
            raise SchemaError(None, None, "max_prompt_tokens", f"must be at least 1, got {self.max_prompt_tokens}")


@dataclass
class OutputsConfig(Recorded):
    sampling: SamplingConfig = option(
        help="How the policy's initial outputs (the ones people critique) are sampled.", factory=SamplingConfig
    )
    model: ModelConfig | None = option(
        None, "The model that writes them, if not the policy (a round that retrains from the base: the last round's model)."
    )


@dataclass
class RefineConfig(Recorded):
    num_candidates: int = option(5, "Refinements generated per sample.")
    use_feedback: bool = option(True, "false gives the ablation that refines without seeing the feedback.")
    sampling: SamplingConfig = option(help="How refinements are sampled.", factory=SamplingConfig)

    def __post_init__(self) -> None:
        if self.num_candidates < 1:
            raise SchemaError(None, None, "num_candidates", f"must be at least 1, got {self.num_candidates}")


@dataclass
class SelectionConfig(Recorded):
    method: str = option("embedding", "The selector that picks the candidate: a registered one (`ilf plugins`) or module.path:Class.")
    also_score: list[str] = option(
        help="Further selectors whose scores are recorded for analysis; the first also breaks the picking selector's ties "
        "(without one, the first tied candidate is taken).",
        factory=list,
    )
    batch_size: int = option(16, "Texts (embedding) or prompts (instruct_rm) per forward pass.")


@dataclass
class LoraConfig(Recorded):
    r: int = option(16, "LoRA rank.")
    alpha: int = option(32, "LoRA scaling numerator.")
    dropout: float = option(0.05, "Dropout on the LoRA input.")
    target_modules: list[str] | str | None = option("all-linear", "Modules that get adapters.")


@dataclass
class FinetuneConfig(Recorded):
    target: str = option("selected", "selected (ILF), initial (initial outputs) or reference (human summaries); methods set it.")
    train_samples: int | None = option(None, "Train on the first N samples of the round only (a study's nested sizes share one round).")
    budget: float | None = option(
        None,
        "Annotator-seconds the training may spend (priced by cost.*): train on the first samples whose feedback fits, as the "
        "method reads it (a critique, the distinct pairs compared, a reference, ...); study.budgets sets it.",
        added=True,
    )
    learning_rate: float = option(1e-5, "Peak learning rate.")
    num_train_epochs: float = option(1.0, "Epochs over the training pairs.")
    per_device_train_batch_size: int = option(8, "Batch size per device.")
    gradient_accumulation_steps: int = option(1, "Steps accumulated per update.")
    max_length: int | None = option(1024, "Truncate prompt+completion to this many tokens.")
    lr_scheduler_type: str = option("linear", "Any transformers scheduler name.")
    warmup_steps: float = option(0.0, "Warm-up steps; a value below 1 is a share of all steps.")
    weight_decay: float = option(0.0, "AdamW weight decay.")
    logging_steps: int = option(5, "Log the loss every N steps.")
    lora: LoraConfig | None = option(None, "Train a LoRA adapter instead of all weights.")
    trainer_args: dict[str, Any] = option(help="Any further trl.SFTConfig argument, passed through.", factory=dict)


@dataclass
class EvaluationConfig(Recorded):
    sampling: SamplingConfig = option(
        help="How evaluation outputs are generated (greedy by default).",
        factory=lambda: SamplingConfig(do_sample=False, batch_size=16),
    )
    include_base: bool = option(True, "Also evaluate the policy before fine-tuning, for the delta.")
    num_samples: int = option(
        1,
        "Outputs per held-out sample (pass@k needs at least k, drawn with sampling.do_sample: true; with pass_at_k "
        "duplicate and empty draws are kept, never drawn again, so the estimate is unbiased). Metrics that read one "
        "output per sample read the first.",
    )
    metrics: list[str] = option(
        help="Registered metrics (`ilf plugins`) computed on the evaluation outputs, the round and the targets.", factory=lambda: ["rouge"]
    )

    def __post_init__(self) -> None:
        if self.num_samples < 1:
            raise SchemaError(None, None, "num_samples", f"must be at least 1, got {self.num_samples}")
        if self.num_samples > 1 and not self.sampling.do_sample:
            raise SchemaError(
                None,
                None,
                "num_samples",
                f"{self.num_samples} outputs per sample with greedy decoding (evaluation.sampling.do_sample: false) are "
                f"{self.num_samples} copies of one output, so pass@k would equal pass@1: set evaluation.sampling.do_sample: "
                "true (with a temperature), or num_samples: 1",
            )


@dataclass
class WorldConfig(Recorded):
    preference: Literal["cued", "hidden"] = option(
        "cued",
        "cued: the salient facts are marked in the post; hidden: the post marks three facts, and which of them matter is "
        "a rule of the annotator's (world.rule: the people it cares about), drawn per run seed, that only feedback, "
        "references and comparisons reveal. The program world: cued states its conventions (how a subtraction and a "
        "division are read, drawn per run seed) in each task's text; hidden leaves them to the critiques and the tests.",
    )
    rule: Literal["name", "verb", "object"] = option(
        "name", "hidden: what the annotator's rule is about: the people of the facts, or their verbs or objects."
    )
    rule_size: int = option(5, "hidden: how many of the people (or verbs, objects) the annotator cares about.")
    state_preference: float = option(
        0.25, "hidden: share of actionable feedback that also says in words what the annotator cares about ('i care about ben :')."
    )
    annotator_noise: float = option(0.1, "Share of the simulated annotator's feedback that is unhelpful or misleading.")
    test_posts: int = option(500, "Held-out posts of the facts world (data.eval_limit overrides).")
    test_seed: int = option(99, "Seed of the held-out posts: the same for every run, so runs are compared on one set.")

    def __post_init__(self) -> None:
        for name in ("state_preference", "annotator_noise"):
            if not 0 <= getattr(self, name) <= 1:
                raise SchemaError(None, None, name, f"must be between 0 and 1, got {getattr(self, name)}")


@dataclass
class CostConfig(Recorded):
    """What a person's feedback costs, in annotator-seconds per piece, by kind. The defaults and
    their sources are on the docs page "Feedback and its cost"; where people annotate in Label
    Studio, the lead times it records replace them (see ``ilf.costs``)."""

    critique: float = option(60.0, "Seconds to read an output and write a critique of it (an assumption: no published figure).")
    comparison: float = option(
        37.0, "Seconds to read two outputs and say which is better (AlpacaEval's human annotators: 36,800 s per 1,000 pairs)."
    )
    ranking: float = option(
        18.0, "Seconds per output of a ranking, so ranking k outputs costs k times this (an assumption: half a comparison per output)."
    )
    judgement: float = option(
        18.0, "Seconds to read one output and answer yes/no, is it fine as it is? (an assumption: half a comparison)."
    )
    reference: float = option(180.0, "Seconds to write a reference output from scratch (an assumption).")
    pick: float = option(
        60.0, "Seconds to read an output's candidate refinements and pick the one that does what the feedback asked (an assumption)."
    )
    edit: float = option(120.0, "Seconds to pick a refinement and edit it into the output one wants (an assumption).")
    execution: float = option(0.0, "Seconds of a person's time a program run against its tests takes (a machine runs it: none).")
    oracle_score: float = option(
        18.0, "Seconds counted for an oracle score (ablations only, no person gives one): priced as the judgement it stands in for."
    )

    def __post_init__(self) -> None:
        for name in ("critique", "comparison", "ranking", "judgement", "reference", "pick", "edit", "execution", "oracle_score"):
            if getattr(self, name) < 0:
                raise SchemaError(None, None, name, f"must be at least 0 seconds, got {getattr(self, name)}")


@dataclass
class PretrainConfig(Recorded):
    steps: int = option(1500, "Optimizer steps.")
    batch_size: int = option(64, "Examples per step.")
    learning_rate: float = option(2e-3, "Peak learning rate (warm-up, cosine decay to a tenth).")
    examples: int = option(24_000, "Training examples drawn from posts the studies never see.")
    hidden_size: int = option(128, "Width of the Llama-style decoder.")
    layers: int = option(3, "Decoder layers.")
    heads: int = option(4, "Attention heads.")
    policy_share: float = option(0.4, "Share of summarisation examples (the rest teach refinement).")
    no_feedback_share: float = option(0.1, "Share of refinement examples without feedback.")
    annotator_noise: float = option(0.1, "Noise of the annotator that writes the refinement examples' feedback.")
    hidden_share: float = option(
        0.0,
        "Share of examples from posts in the hidden world's form (three marked facts), the annotator's choice among them "
        "drawn at random: they teach acting on feedback without any rule, so one model serves both worlds.",
    )
    judge_share: float = option(
        0.0, "Share of examples that ask whether a refinement did what the feedback asked (' yes' / ' no'): the judge instruct_rm asks."
    )
    state_preference: float = option(0.25, "Share of the hidden-form refinement examples whose feedback states a (random) preference.")
    cued_share: float = option(
        0.0,
        "Program world: share of tasks whose text states the conventions they are read by (the cued world's form); the rest "
        "leave them unstated, each drawn at random, so the policy knows both readings and no world's choice.",
        added=True,
    )
    seed: int = option(1234, "Seed of the weights and the examples.")
    dtype: Literal["float32", "bfloat16"] = option(
        "float32",
        "float32, or bfloat16 (autocast over float32 weights, eager attention): 1.7x faster per step on a CPU with "
        "AVX512-BF16, but it trained the facts world's model to a final loss of 0.36 against float32's 0.21.",
        added=True,
    )
    cache_dir: str = option("runs/cache", "Where pretrained models are kept, one folder per settings.", path=True, contents=False)


@dataclass
class RewardConfig(Recorded):
    model: ModelConfig | None = option(None, "The reward model's base (a one-logit head is added); default the policy.")
    lora: LoraConfig | None = option(None, "Train the reward model as a LoRA adapter (merged when saved).")
    learning_rate: float = option(1e-5, "Peak learning rate.")
    num_train_epochs: float = option(1.0, "Epochs over the comparisons.")
    per_device_train_batch_size: int = option(8, "Pairs per batch.")
    validation_share: float = option(0.1, "Share of comparisons held out to report the reward model's accuracy.")
    best_of_n: int = option(16, "Samples per prompt for the best-of-N methods.")
    score_batch_size: int = option(16, "Texts per forward pass when scoring.")


@dataclass
class LabelStudioConfig(Recorded):
    """The Label Studio server every part of the integration talks to (its feedback sources, its
    selector, `ilf loop`), and how a round waits for people (feedback.source: labelstudio_round)."""

    project: str = option("{name} round {round}", "Title of each round's project ({name}: the run's name; {round}: the round's number).")
    min_annotations: float = option(
        1.0,
        "What closes a round: a share of its tasks annotated or skipped (0 < x <= 1; 1 = all), or a count (an integer above 1).",
    )
    deadline: float | None = option(None, "Seconds after the round's tasks were pushed after which it closes with what it has.")
    poll_seconds: float = option(10.0, "How often the waiting round asks the server for its counts.")
    webhook: bool = option(
        False,
        "Also wake on Label Studio's webhooks (ANNOTATION_CREATED/UPDATED to a receiver on 127.0.0.1); polling goes on, so a "
        "missed call costs at most poll_seconds.",
    )
    url: str | None = option(None, "Label Studio URL; default LABEL_STUDIO_URL, else the local `ilf labelstudio serve`.", added=True)
    data_dir: str | None = option(
        None, "Data directory of the local Label Studio server, if not the default.", added=True, path=True, contents=False
    )
    start_server: bool = option(True, "Start a local server (`ilf labelstudio serve`) when no URL is configured or set.")
    port: int = option(8080, "Port of the local server the loop starts.")
    annotator: Literal["none", "simulated"] = option(
        "none",
        "none: people annotate; simulated: the facts world's annotator works through the HTTP API as a user of its own.",
    )
    annotator_delay: float = option(0.0, "Seconds the simulated annotator spends on a task (to watch a round fill).")
    skip_share: float = option(0.0, "Share of tasks the simulated annotator skips, as people do.")

    def __post_init__(self) -> None:
        m = self.min_annotations
        if not (0 < m <= 1 or (m > 1 and float(m).is_integer())):
            raise SchemaError(None, None, "min_annotations", f"must be a share in (0, 1] or a whole count above 1, got {m}")
        if self.poll_seconds <= 0:
            raise SchemaError(None, None, "poll_seconds", f"must be positive, got {self.poll_seconds}")
        if not 0 <= self.skip_share < 1:
            raise SchemaError(None, None, "skip_share", f"must be in [0, 1), got {self.skip_share}")

    def needed(self, tasks: int) -> int:
        """Annotations (skips included) that close a round of ``tasks`` tasks."""
        if self.min_annotations <= 1:
            return max(1, math.ceil(self.min_annotations * tasks - 1e-9))
        return min(tasks, int(self.min_annotations))


@dataclass
class RunConfig(Recorded):
    name: str = option("ilf", "A name for the run.")
    seed: int = option(0, "Seed for sampling and training.")
    method: str = option("ilf", "What the policy is trained on, and how: a registered method (`ilf plugins`) or module.path:Class.")
    task: TaskConfig = option(help="What the model does and how its outputs are cleaned.", factory=TaskConfig)
    data: DataConfig = option(help="Where samples come from.", factory=DataConfig)
    feedback: FeedbackConfig = option(help="Where feedback comes from.", factory=FeedbackConfig)
    policy: ModelConfig = option(help="The model being trained.", factory=ModelConfig)
    refiner: ModelConfig | None = option(
        None, "The model that writes refinements; default the policy (pretrained@STEPS: the world model after fewer steps)."
    )
    outputs: OutputsConfig = option(help="The policy's initial outputs, the ones feedback is about.", factory=OutputsConfig)
    refine: RefineConfig = option(help="Refinement generation.", factory=RefineConfig)
    selection: SelectionConfig = option(help="How one refinement is chosen per sample.", factory=SelectionConfig)
    finetune: FinetuneConfig = option(help="Supervised fine-tuning of the policy.", factory=FinetuneConfig)
    evaluation: EvaluationConfig = option(help="Held-out evaluation.", factory=EvaluationConfig)
    reward: RewardConfig = option(help="The reward model of the ranking methods, trained on comparisons.", factory=RewardConfig)
    method_options: dict[str, dict[str, Any]] = option(
        help="Settings of methods that define their own, by method name (method_options: {sdft: {max_steps: 40}}); "
        "`ilf plugins NAME` lists a plug-in's options.",
        factory=dict,
    )
    selection_options: dict[str, dict[str, Any]] = option(
        help="Settings of selectors, by selector name (selection_options: {instruct_rm: {judge: {name_or_path: ./judge}}}).",
        factory=dict,
        added=True,
    )
    feedback_options: dict[str, dict[str, Any]] = option(
        help="Settings of feedback sources, by source name (feedback_options: {file: {path: feedback.jsonl}}).", factory=dict, added=True
    )
    metric_options: dict[str, dict[str, Any]] = option(
        help="Settings of metrics, by metric name (metric_options: {judge_win_rate: {against: base}}).", factory=dict, added=True
    )
    cost: CostConfig = option(
        help="What each kind of feedback costs a person, in seconds: the unit studies compare methods' budgets in.",
        factory=CostConfig,
    )
    world: WorldConfig = option(
        help="The controlled facts world (data.loader facts_world, task facts, feedback.source simulated).", factory=WorldConfig
    )
    pretraining: PretrainConfig | None = option(
        None,
        "Train the world's policy+refiner from scratch first (the facts world's, or the program world's when data.loader is "
        "program_world); a model named 'pretrained' is that model.",
    )
    labelstudio: LabelStudioConfig = option(
        help="Rounds with people: where each round's tasks go and when a round closes.", factory=LabelStudioConfig
    )
    rounds: int = option(
        1,
        "Feedback rounds: in round k the policy of round k-1 writes outputs for data.limit fresh samples, which are "
        "critiqued, refined, selected and trained on (run_dir/round-k/ each).",
    )
    round_training: str = option(
        "continue",
        "continue: round k fine-tunes round k-1's policy on round k's targets; restart: it fine-tunes the base policy "
        "on the targets of rounds 1..k.",
    )

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise SchemaError(None, None, "rounds", f"must be at least 1, got {self.rounds}")
        if self.round_training not in ("continue", "restart"):
            raise SchemaError(None, None, "round_training", f"must be continue or restart, got {self.round_training!r}")
        if self.rounds > 1 and self.data.limit is None:
            raise SchemaError(None, None, "data.limit", "must be set when rounds > 1 (each round takes data.limit fresh samples)")
        self._check_plugin_names()

    def _check_plugin_names(self) -> None:
        """Every plug-in the config names exists, before any stage runs (names are read from the
        registries' source), and the metrics' settings hold (each named metric's module is imported)."""
        from ilf.registry import FEEDBACK_SOURCES, LOADERS, METHODS, METRICS, SELECTORS, TASKS

        named = [
            ("method", METHODS, self.method),
            ("task.name", TASKS, self.task.name),
            ("data.loader", LOADERS, self.data.loader),
            ("feedback.source", FEEDBACK_SOURCES, self.feedback.source),
            ("selection.method", SELECTORS, self.selection.method),
            *((f"selection.also_score[{i}]", SELECTORS, name) for i, name in enumerate(self.selection.also_score)),
            *((f"evaluation.metrics[{i}]", METRICS, name) for i, name in enumerate(self.evaluation.metrics)),
        ]
        for key, registry, name in named:
            problem = registry.unknown(name)
            if problem is None and not registry.is_builtin(name):
                # someone's own plug-in: imported now, so a missing method is named before any stage runs
                problem = registry.interface_problem(name)
            if problem is not None:
                raise SchemaError(None, None, key, problem)
        # (the plug-ins named by module.path:Name were imported above, so the names they declare are known)
        for options_key, registry in options_sections().items():
            for name, raw in getattr(self, options_key).items():
                key = f"{options_key}.{name}"
                problem = registry.unknown(name)  # the closest name
                if problem is not None:
                    raise SchemaError(None, None, key, problem)
                if raw in (None, {}):  # nothing to check, nothing to import
                    continue
                options = getattr(registry.get(name), "Options", None)
                if options is None:
                    raise SchemaError(None, None, key, f"{name} has no options of its own (`ilf plugins {name}`)")
                try:
                    build(options, raw)
                except SchemaError as err:
                    raise SchemaError(None, None, f"{key}.{err.field}" if err.field else key, err.problem) from None
        for name in self.evaluation.metrics:  # a metric's own settings (its modules are light: no model library at import)
            METRICS.get(name).check_config(self)  # every metric derives from Metric (the registry checks its interface)

    @property
    def refiner_model(self) -> ModelConfig:
        return self.refiner or self.policy


def to_plain(obj: Any) -> Any:
    """A config as plain dicts and lists, the form written to YAML and hashed."""
    return as_plain(obj)


def fingerprinted(obj: Any) -> Any:
    """``to_plain`` less the fields ``option(added=True)`` marks, where they hold their default."""
    if dataclasses.is_dataclass(obj):
        return {
            f.name: fingerprinted(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not (f.metadata.get("added") and getattr(obj, f.name) == f.default)
        }
    if isinstance(obj, dict):
        return {k: fingerprinted(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [fingerprinted(v) for v in obj]
    return obj


def fingerprint(*parts: Any) -> str:
    """A short stable hash of config sections; equal inputs give equal fingerprints."""
    text = json.dumps([fingerprinted(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (['a','b','c'], value parsed as YAML, so 5 is an int and null is None)."""
    if "=" not in text:
        raise ConfigError("--set", None, text, "expected dotted.key=value")
    key, _, raw = text.partition("=")
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError("--set", None, text, "empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError("--set", None, key, f"value is not valid YAML: {err}") from None
    return keys, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each ``dotted.key=value`` in the raw mapping; the schema check that follows catches typos."""
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                where = ".".join(keys[: depth + 1])
                raise ConfigError("--set", None, where, f"is {child!r}, not a mapping, so {text!r} cannot set a key in it")
            node = child
        node[keys[-1]] = value
    return raw


def read_config_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The raw mapping of a YAML config, its relative file paths resolved against its folder.

    ``base: other.yaml`` (relative to this file) starts from that config: mappings merge key by
    key, anything else this file sets replaces the base's value."""
    if Path(path).resolve() in _seen:
        raise ConfigError(path, None, "base", "configs name each other as base in a cycle")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, None, "no such config file") from None
    except UnicodeDecodeError as err:
        line = Path(path).read_bytes()[: err.start].count(b"\n") + 1
        raise ConfigError(path, line, None, f"not valid UTF-8 (byte 0x{err.object[err.start]:02x})") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(path, line, None, f"not valid YAML: {getattr(err, 'problem', err)}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(path, None, None, "the top level must be a mapping")
    # YAML anchors share one object between keys; a copy keeps --set on one key from changing both.
    raw = move_old_keys(json.loads(json.dumps(loaded or {})), str(path))
    resolve_relative_paths(raw, Path(path).resolve().parent)
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(path, None, "base", f"must be the path of a config file, got {base!r}")
    return _merge(read_config_file(Path(path).resolve().parent / base, (*_seen, Path(path).resolve())), raw)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def path_fields(cls: type, prefix: str = "") -> list[str]:
    """The dotted keys of a dataclass whose values name files (``option(..., path=True)``), nested
    sections included."""
    found = [prefix + f.name for f in dataclasses.fields(cls) if f.metadata.get("path")]
    for name, section in sections(cls).items():
        found += path_fields(section, f"{prefix}{name}.")
    return found


def options_sections() -> dict[str, Any]:
    """Each ``<kind>_options`` section of a config and the registry of the plug-ins it holds settings of."""
    from ilf.registry import ALL

    return {registry.options_key: registry for registry in ALL if registry.options_key}


def import_own_plugins(raw: dict[str, Any]) -> None:
    """Import the plug-ins a raw config names by ``module.path:Name``: a class that declares its
    ``name`` is then known by it, and its options are set under that name (``added_words``)."""
    from ilf.registry import UnknownPlugin

    for registry in options_sections().values():
        node: Any = raw
        for part in registry.config_key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        for spec in node if isinstance(node, list) else [node]:
            if isinstance(spec, str) and ":" in spec:
                try:
                    registry.get(spec)
                except UnknownPlugin:
                    continue  # reported with its key when the config is checked


def plugin_options_class(options_key: str, name: str) -> type | None:
    """The ``Options`` dataclass of the plug-in ``name`` of the kind whose section is ``options_key``
    (its module imported), or None when it has none; an unknown name is a ConfigError."""
    registry = options_sections()[options_key]
    problem = registry.unknown(name)
    if problem is not None:
        raise SchemaError(None, None, f"{options_key}.{name}", problem)
    return getattr(registry.get(name), "Options", None)


def resolve_relative_paths(raw: dict[str, Any], folder: Path) -> None:
    """Make the file paths of a config file independent of the folder ``ilf`` runs in.

    The keys are those marked ``path=True``, in the run config and in the options of the plug-ins
    the file sets options of. A value is taken as relative to the config's folder when it says so
    (``./``, ``../``) or when it exists there; anything else (a hub id such as
    ``Qwen/Qwen2.5-1.5B``) stays as written.
    """
    keys = path_fields(RunConfig)
    if any(raw.get(key) for key in options_sections()):
        import_own_plugins(raw)
    for options_key in options_sections():
        for name, section in (raw.get(options_key) or {}).items() if isinstance(raw.get(options_key), dict) else ():
            try:
                options = plugin_options_class(options_key, name) if isinstance(section, dict) else None
            except SchemaError:
                continue  # a name this file alone does not make known (its base's plug-in, a typo): checked when built
            if options is not None:
                keys += path_fields(options, f"{options_key}.{name}.")
    for dotted in keys:
        *parents, leaf = dotted.split(".")
        node: Any = raw
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not isinstance(node.get(leaf), str):
            continue
        value = node[leaf]
        if value.startswith("~"):
            node[leaf] = str(Path(value).expanduser())
        elif not Path(value).is_absolute() and ":" not in value and (value.startswith(("./", "../")) or (folder / value).exists()):
            node[leaf] = str((folder / value).resolve())


_MOVED_SAID: set[tuple[str, str]] = set()


def unknown_keys(raw: dict[str, Any], cls: type | None = None, prefix: str = "") -> list[str]:
    """The dotted keys of a raw config that no field of the schema has (sections walked)."""
    cls = cls or RunConfig
    fields, inner = {f.name for f in dataclasses.fields(cls)}, sections(cls)
    found = []
    for key, value in raw.items():
        if key not in fields:
            found.append(prefix + str(key))
        elif key in inner and isinstance(value, dict):
            found += unknown_keys(value, inner[key], f"{prefix}{key}.")
    return found


def move_old_keys(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Settings that now belong to a plug-in's options, read from the keys earlier configs used.

    Each plug-in lists its old keys in ``moved``; a value found at one is moved to its new place
    (``{options}`` there: the plug-in's own options section), and one line says where, once per
    config and key. Only a config with a key the schema lacks pays for importing the plug-ins."""
    unknown = [key for key in unknown_keys(raw) if key not in ("base", "study")]  # read by the file reader, the study
    if not unknown:
        return raw
    import logging

    targets: dict[str, list[str]] = {}
    for options_key, registry in options_sections().items():
        for entry in registry.entries():
            for old, target in (getattr(entry.obj, "moved", None) or {}).items():
                new = target.replace("{options}", f"{options_key}.{entry.name}")
                if new not in targets.setdefault(old, []):  # two sources reading one shared key
                    targets[old].append(new)
    for key in unknown:
        if key not in targets:
            continue  # not a moved key: the schema check names it (and the closest key)
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            node = node[part]
        value = node.pop(leaf)
        for new in targets[key]:
            *new_parents, new_leaf = new.split(".")
            home = raw
            for part in new_parents:
                home = home.setdefault(part, {})
                if not isinstance(home, dict):
                    raise ConfigError(source, None, new, f"is not a mapping, so {key} cannot move into it")
            if new_leaf in home:
                raise ConfigError(source, None, key, f"is the old place of {new}, which is set too: keep {new} alone")
            home[new_leaf] = value
        if (source, key) not in _MOVED_SAID:
            _MOVED_SAID.add((source, key))
            logging.getLogger("ilf.config").warning(
                "%s: %s is now %s (read from there; rename it to silence this)", source, key, " and ".join(targets[key])
            )
    return raw


def where_set(path: str | Path, key: str, _seen: tuple[Path, ...] = ()) -> tuple[Path, int] | None:
    """The config file that sets the dotted ``key`` (``path``, or a base it names) and the line it
    is set on; None where none of them sets it."""
    path = Path(path)  # named as given: the one the user typed reads best in an error
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    node, line = root, 0
    for part in key.split("."):
        entries = node.value if isinstance(node, yaml.MappingNode) else []
        found = next(((k, v) for k, v in entries if isinstance(k, yaml.ScalarNode) and k.value == part), None)
        if found is None:
            break
        line, node = found[0].start_mark.line + 1, found[1]
    else:
        return path, line
    entries = root.value if isinstance(root, yaml.MappingNode) else []
    base = next(
        (v.value for k, v in entries if isinstance(k, yaml.ScalarNode) and k.value == "base" and isinstance(v, yaml.ScalarNode)), None
    )
    if base is None or path.resolve() in _seen:
        return None
    return where_set(path.resolve().parent / base, key, (*_seen, path.resolve()))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or start from the defaults), apply overrides and validate."""
    raw: dict[str, Any] = read_config_file(path) if path is not None else {}
    return build_config(raw, str(path) if path is not None else "<defaults>", overrides)


def build_config(raw: dict[str, Any], source: str, overrides: list[str] | None = None) -> RunConfig:
    if overrides:
        if not source.endswith(" (with --set)"):  # a study's cells: its source says so already
            source += " (with --set)"
        raw = move_old_keys(apply_overrides(raw, overrides), source)
    return build(RunConfig, raw, ConfigError, source)


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(to_plain(config), sort_keys=False, allow_unicode=True)


def field_help(cls: type = RunConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, help) for every field, recursing into sections, optional ones too."""
    inner = sections(cls)
    rows: list[tuple[str, str, str]] = []
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        )
        section = inner.get(f.name)
        if dataclasses.is_dataclass(default):
            rows.extend(field_help(type(default), key + "."))
        elif default is None and section is not None:  # an optional section: off unless given
            rows.append((key, "null", f.metadata.get("help", "") + " (a section: the keys below)"))
            rows.extend(field_help(section, key + "."))
        else:
            path_note = " (A path: relative to the config file's folder.)" if f.metadata.get("path") else ""
            rows.append((key, json.dumps(to_plain(default)), _help_of(cls, f) + path_note))
    return rows


def _help_of(cls: type, f: dataclasses.Field) -> str:
    """A field's help; a subclass that only changes a field's default keeps its base's help."""
    if f.metadata.get("help"):
        return f.metadata["help"]
    for base in cls.__mro__[1:]:
        inherited = {g.name: g for g in dataclasses.fields(base)} if dataclasses.is_dataclass(base) else {}
        if f.name in inherited and inherited[f.name].metadata.get("help"):
            return inherited[f.name].metadata["help"]
    return ""
