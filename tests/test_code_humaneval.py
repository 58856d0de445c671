"""HumanEval through the sandbox: every canonical solution passes its tests, and a mutated copy of
each (its function returns a slightly different value) fails them, so a verdict means something."""

from __future__ import annotations

import ast

from ilf.data.humaneval import load, packaged_file
from ilf.execution.sandbox import Limits, Sandbox, build_program
from ilf.records import Sample

MUTATE = '''

def _mutant(value):
    """A value near the right one: what an off-by-one or a wrong branch returns."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, (list, tuple)):
        return type(value)([*value, None])
    if value is None:
        return 0
    return None
'''


class _Returns(ast.NodeTransformer):
    """Wraps each ``return`` of the function under test (not of functions nested in it)."""

    def __init__(self) -> None:
        self.depth = 0

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.depth += 1
        if self.depth == 1:
            self.generic_visit(node)
        self.depth -= 1
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        value = node.value or ast.Constant(None)
        return ast.copy_location(ast.Return(ast.Call(ast.Name("_mutant", ast.Load()), [value], [])), node)


def mutated(sample: Sample) -> str:
    """The sample's function, with every value it returns nudged, followed by its tests."""
    module = ast.parse(sample.inputs["prompt"] + sample.references[0])
    entry = sample.extra["entry_point"]
    module.body = [_Returns().visit(n) if isinstance(n, ast.FunctionDef) and n.name == entry else n for n in module.body]
    return ast.unparse(ast.fix_missing_locations(module)) + MUTATE + f"\n\n{sample.extra['test']}\n\ncheck({entry})\n"


def test_each_canonical_solution_passes_and_its_mutant_fails() -> None:
    samples = load(packaged_file()).samples
    assert len(samples) == 164
    sandbox = Sandbox(Limits(timeout=10.0))
    originals = sandbox.run_many(
        [build_program(s.inputs["prompt"], s.references[0], s.extra["test"], s.extra["entry_point"]) for s in samples]
    )
    assert [s.id for s, r in zip(samples, originals) if not r.passed] == []
    mutants = sandbox.run_many([mutated(s) for s in samples])
    survivors = [(s.id, r.status, r.error) for s, r in zip(samples, mutants) if r.passed]
    assert survivors == []
    # They fail because a test caught the wrong value, not because the mutant does not run.
    assert all(r.status in ("failed", "timeout") for r in mutants)
    assert sum(r.error.startswith("AssertionError") for r in mutants) >= 150
    assert all(r.isolation == "bwrap" for r in [*originals, *mutants])
