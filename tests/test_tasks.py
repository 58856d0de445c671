import pytest

from ilf.config import TaskConfig
from ilf.records import Sample
from ilf.tasks import get_task
from ilf.tasks.base import drop_unfinished_sentence, first_line

SAMPLE = Sample(id="s", inputs={"title": "Lost my keys", "post": "I lost my keys at the gym."})


@pytest.mark.parametrize(
    "raw, clean",
    [
        (" I lost my keys. I looked every", "I lost my keys."),
        ("I lost my keys! Then\nTitle: next post", "I lost my keys!"),
        ('He said "no." and left', 'He said "no."'),
        ("no sentence ends here", ""),
        ("\n\nleading blank lines. Skipped", "leading blank lines."),  # a leading newline is not an end
        ("Two sentences. Both done.", "Two sentences. Both done."),
    ],
)
def test_summarization_postprocess(raw: str, clean: str) -> None:
    assert get_task(TaskConfig()).postprocess(raw) == clean


def test_fallback_keeps_first_line() -> None:
    task = get_task(TaskConfig())
    assert task.fallback("unfinished words\nmore") == "unfinished words"
    assert first_line("  a\nb") == "a" and drop_unfinished_sentence("a. b") == "a."


def test_summarization_prompts() -> None:
    task = get_task(TaskConfig())
    initial = task.initial_prompt(SAMPLE)
    assert initial.startswith("Title: Lost my keys\n\nText: I lost my keys at the gym.") and initial.endswith("TL;DR:")
    refine = task.refine_prompt(SAMPLE, "Keys lost.", "Say where: at the gym.")
    assert "Summary: Keys lost." in refine and "Feedback on summary: Say where: at the gym." in refine
    assert refine.index("Text:") < refine.index("Summary:") < refine.index("Feedback") and refine.endswith("Improved TL;DR:")
    ablation = task.refine_prompt(SAMPLE, "Keys lost.", None)
    assert "Feedback" not in ablation and "feedback" not in ablation and ablation.endswith("Improved TL;DR:")
    assert task.completion("Keys lost at the gym. ") == " Keys lost at the gym."


def test_template_task_from_config() -> None:
    task = get_task(
        TaskConfig(
            name="template",
            options={
                "initial_template": "Q: {question}\nA:",
                "refine_template": "Q: {question}\nA: {output}\nCritique: {feedback}\nBetter A:",
                "drop_unfinished_sentence": False,
            },
        )
    )
    sample = Sample(id="q", inputs={"question": "2+2?"})
    assert task.initial_prompt(sample) == "Q: 2+2?\nA:"
    assert task.refine_prompt(sample, "5", "wrong") == "Q: 2+2?\nA: 5\nCritique: wrong\nBetter A:"
    assert task.postprocess(" 4\nQ: next") == "4"
    with pytest.raises(ValueError, match=r"uses \{question\}, which the sample does not have \(fields: input, post, title\)"):
        task.initial_prompt(SAMPLE)
    with pytest.raises(ValueError, match="unknown option"):
        get_task(TaskConfig(name="template", options={"initial": "x"}))
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        get_task(TaskConfig(name="nope"))
