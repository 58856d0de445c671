"""Every fenced shell command of README.md and docs/ runs here, or is marked as one that cannot.

The marks and what is checked for each are explained in docs/commands.md: an unmarked block runs
command by command (``ilf`` in this process, anything else in bash) and must exit 0; a block marked
``long``, ``gpu``, ``hub`` or ``labelstudio`` has every ``ilf`` command's arguments parsed and its
config loaded and validated, without running it; ``setup`` blocks change the machine and are only
read; ``test tests/FILE.py`` names the test that runs the block as written.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import pytest
from conftest import REPO

from ilf.cli import build_parser, main

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
SHELL = ("bash", "sh", "console")
MARK = re.compile(r"<!-- commands: (?P<kind>[a-z]+)(?: (?P<arg>\S+))? -->")
CHECKED = {"long", "gpu", "hub", "labelstudio"}  # parsed and their configs loaded, not run
KINDS = CHECKED | {"setup", "test"}
LINKED = ("experiments", "data", "ilf", "scripts", "benchmarks", "tests", "docs")  # what a scratch folder sees of the repository


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    mark: str | None
    mark_arg: str | None
    text: str

    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, with the mark on the line just before each one."""
    found, lines, index = [], page.read_text().splitlines(), 0
    while index < len(lines):
        fence = re.match(r"^(\s*)```(\w*)\s*$", lines[index])
        if not fence:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
        mark = MARK.fullmatch(lines[index - 1].strip()) if index else None
        body = "\n".join(line[len(fence.group(1)) :] for line in lines[index + 1 : end])
        found.append(Block(page, index + 1, fence.group(2), mark and mark["kind"], mark and mark["arg"], body))
        index = end + 1
    return found


def commands(block: Block) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blank lines dropped,
    ``a && b`` split; in a console block only the lines after a ``$`` prompt."""
    text = block.text.replace("\\\n", " ")
    lines = text.splitlines()
    if block.language == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    found = []
    for line in lines:
        words = shlex.split(line, comments=True)
        command: list[str] = []
        for word in [*words, "&&"]:
            if word == "&&":
                if command:
                    found.append(shlex.join(command))
                command = []
            else:
                command.append(word)
    return found


def ilf_arguments(command: str) -> tuple[dict[str, str], list[str]] | None:
    """(environment, arguments) when the command runs ilf (``ilf``, ``.venv/bin/ilf``,
    ``python -m ilf``, ``accelerate launch -m ilf``), else None."""
    words = shlex.split(command)
    env = {}
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    if words and (words[0] == "ilf" or words[0].endswith("/ilf")):
        return env, words[1:]
    for index in range(len(words) - 1):
        if words[index : index + 2] == ["-m", "ilf"]:
            return env, words[index + 2 :]
    return None


def workspace(page: Path, folder: Path) -> Path:
    """A scratch folder that sees the repository's folders, with the files the page's code blocks
    name on their first line (``# file: NAME``)."""
    for block in blocks(page):
        first, _, body = block.text.partition("\n")
        named = re.fullmatch(r"# file: (\S+)", first.strip())
        if named:
            target = folder / named.group(1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body + "\n")
    for name in LINKED:
        if not (folder / name).exists():  # a folder the page writes into stays its own, never the repository's
            (folder / name).symlink_to(REPO / name)
    return folder


def check_config(argv: list[str]) -> None:
    """Parse ``ilf`` arguments and load the config they name, as the command would, without running it."""
    from ilf.config import load_config
    from ilf.study.cells import cells
    from ilf.study.config import load_study

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:
        raise AssertionError(f"ilf {shlex.join(argv)}: the arguments do not parse") from exit
    overrides = list(getattr(args, "overrides", []) or [])
    if args.command in ("study", "compare", "demo"):
        if args.command == "demo":
            name = "demo_quick" if args.quick else args.study
            path = str(files("ilf.studies") / f"{name}.yaml")
            overrides += [f"study.seeds={list(range(args.seeds))}"] if args.seeds else []
        else:
            path = args.config
        study, base, source = load_study(path, overrides)
        assert cells(study, base, source), f"{path}: a study without cells"
        return
    config = getattr(args, "config", None)
    if config and Path(config).suffix in (".yaml", ".yml"):
        load_config(config, overrides)
    elif config:  # `ilf status RUN_DIR` of a study: the folder the study command writes
        assert args.command == "status", f"ilf {shlex.join(argv)}: {config} is not a YAML config"
    elif overrides:
        load_config(None, overrides)


def run_ilf(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """``ilf ARGV`` in this process: its exit status and what it printed."""
    printed = io.StringIO()
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            try:
                status = main(argv)
            except SystemExit as exit:  # --help, and argparse's errors
                status = exit.code if isinstance(exit.code, int) else 1
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return status, printed.getvalue()


ALL_BLOCKS = [block for page in PAGES for block in blocks(page) if block.language in SHELL]


def test_every_shell_block_is_found_and_every_mark_is_known() -> None:
    assert len(ALL_BLOCKS) > 20, "the docs' shell blocks were not found"
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            mark = MARK.fullmatch(line.strip())
            if line.strip().startswith("<!-- commands"):
                assert mark and mark["kind"] in KINDS, f"{page.relative_to(REPO)}:{number}: unknown mark {line.strip()!r}"
    marked_lines = {(block.page, block.line) for block in blocks_with_marks()}
    for page in PAGES:  # a mark must sit right before a shell fence, or it marks nothing
        lines = page.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            if MARK.fullmatch(line.strip()):
                assert (page, number + 1) in marked_lines, f"{page.relative_to(REPO)}:{number}: a mark not followed by a shell block"


def blocks_with_marks() -> list[Block]:
    return [block for block in ALL_BLOCKS if block.mark]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_the_commands_of_a_page_run_or_are_marked(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shell_blocks = [block for block in blocks(page) if block.language in SHELL]
    if not shell_blocks:
        return  # no shell commands
    monkeypatch.chdir(workspace(page, tmp_path))
    bin_dir = Path(sys.executable).parent
    for block in shell_blocks:
        if block.mark == "setup":
            continue
        if block.mark == "test":
            test = REPO / (block.mark_arg or "")
            assert test.is_file() and page.name in test.read_text(), f"{block.where()}: {block.mark_arg} does not run {page.name}"
            continue
        for command in commands(block):
            found = ilf_arguments(command)
            if block.mark in CHECKED:
                if found:
                    try:
                        check_config(found[1])
                    except Exception as err:
                        raise AssertionError(f"{block.where()}: `{command}` does not check: {err}") from err
                elif command.split()[0] == "python":
                    script = command.split()[1]
                    assert script == "-m" or Path(script).is_file(), f"{block.where()}: no {script}"
                continue
            if found:
                status, printed = run_ilf(found[1], found[0])
            else:
                env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
                done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=120)
                status, printed = done.returncode, done.stdout + done.stderr
            assert status == 0, (
                f"{block.where()}: `{command}` exited with {status}; mark the block if it cannot run in a test "
                f"(docs/commands.md)\n{printed[-3000:]}"
            )


def test_the_readme_links_to_pages_that_exist() -> None:
    readme = (REPO / "README.md").read_text()
    links = [target for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme) if "://" not in target]
    assert "docs/getting-started.md" in links and "docs/reference/config.md" in links
    for target in links:
        assert (REPO / target).exists(), f"README.md links to {target}, which does not exist"
    assert len(readme.splitlines()) <= 200, "the README is a front page; the manual is docs/"
