"""Every name the docs and the help texts mention exists: file paths (from the repository, the package or the
page), make targets, subcommands and their options. A page that names a renamed file, a removed option or a
target nobody wrote fails here, not in a reader's terminal."""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from siamese_bench.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "siamese_bench"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "examples").rglob("*.md"))]
PACKAGE_FOLDERS = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("_")}
REPO_FOLDERS = ("siamese_bench", "docs", "tests", "benchmarks", "examples", ".ci")
# made by the commands, not kept in the repository (the outputs table says where)
MADE = ("reports/", "mlruns", "mlartifacts", "optuna.journal", ".services/", "slurm-logs", "datasets/", "build/")
MADE += ("outputs/", "study/")  # a run's and a study's MLflow artifacts
FILE = re.compile(r"\.(py|md|yaml|yml|json|csv|sh|toml|lock|txt|png|pdf)$")
PATH = re.compile(r"(?<![\w./$-])((?:\.ci|[a-z_]+)/[\w./-]*[\w])")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
CODE = re.compile(r"`([^`\n]+)`")
# options of other programs the docs quote (uvicorn, mlflow server), and the name of the options' kind
FOREIGN = {"--ssl-certfile", "--ssl-keyfile", "--allowed-hosts", "--flags"}


@dataclass(frozen=True)
class Name:
    kind: str  # path, link, target, command, option
    text: str
    where: str  # file:line

    def __str__(self) -> str:
        return f"{self.where}: {self.kind} {self.text}"


def benchmark_options() -> set[str]:
    """The options of the scripts in benchmarks/ (`benchmarks/soak.py --secure`)."""
    text = "".join(p.read_text() for p in (REPO / "benchmarks").glob("*.py"))
    return set(re.findall(r"add_argument\(\s*\"(--[a-z][\w-]*)\"", text))


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z][\w-]*):", text, re.M))


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    found = {o for a in parser._actions for o in a.option_strings}
    for sub in subparsers(parser).values():  # `services up --slurm`: an action's options count for the command
        found |= options_of(sub)
    return found


@pytest.fixture(scope="module")
def cli() -> dict[str, set[str]]:
    """Each subcommand's options, from the parser with every subcommand in full."""
    commands = {}
    for name in subparsers(build_parser()):
        full = subparsers(build_parser(name))[name]
        commands[name] = options_of(full) | options_of(build_parser())
    return commands


def help_texts() -> list[tuple[str, str]]:
    """(label, text) of the top-level help and every subcommand's (and action's) help."""
    texts = [("siamese-bench --help", build_parser().format_help())]
    for name in subparsers(build_parser()):
        sub = subparsers(build_parser(name))[name]
        texts.append((f"siamese-bench {name} --help", sub.format_help()))
        texts += [(f"siamese-bench {name} {a} --help", p.format_help()) for a, p in subparsers(sub).items()]
    return texts


def docstrings() -> list[tuple[str, str]]:
    """Each module's text (docstrings and comments name files too)."""
    return [(str(p.relative_to(REPO)), p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))]


def logical_lines(text: str) -> list[tuple[int, str, bool]]:
    """(number, line, in a fenced code block), a shell line continued with a backslash joined to the next."""
    out: list[tuple[int, str, bool]] = []
    fenced, held, start = False, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced and line.rstrip().endswith("\\"):
            held, start = held + line.rstrip()[:-1] + " ", start or number
            continue
        out.append((start or number, held + line, fenced))
        held, start = "", 0
    return out


def names_in(label: str, text: str, page: Path | None) -> list[Name]:
    found: list[Name] = []
    for number, line, fenced in logical_lines(text):
        where = f"{label}:{number}"
        for match in PATH.finditer(line):
            found.append(Name("path", match.group(1).rstrip("."), where))
        if page is not None:
            for match in LINK.finditer(line):
                if not match.group(1).startswith(("http://", "https://", "mailto:")):
                    found.append(Name("link", str((page.parent / match.group(1)).resolve()), where))
        pieces = [m.group(1) for m in CODE.finditer(line)] if page is not None and not fenced else [line]
        for piece in pieces:
            found += commands_in(piece, where)
            bare = re.match(r"--([a-z][a-z0-9-]*)", piece)  # `--stack-seeds 1` in prose: an option of some command
            if page is not None and not fenced and bare:
                found.append(Name("option", f"* --{bare.group(1)}", where))
    return found


def commands_in(piece: str, where: str) -> list[Name]:
    """`make X` targets, `siamese-bench X --opt` subcommands and their options, in one code span or line."""
    found = []
    try:
        words = shlex.split(piece, comments=True)
    except ValueError:
        words = piece.split()
    for i, word in enumerate(words):
        if word == "make" and i + 1 < len(words) and re.fullmatch(r"[a-z][a-z0-9-]*", words[i + 1]):
            found.append(Name("target", words[i + 1], where))
        if word.endswith("siamese-bench") and i + 1 < len(words) and re.fullmatch(r"[a-z][\w-]*", words[i + 1]):
            command = words[i + 1]
            found.append(Name("command", command, where))
            for option in words[i + 2 :]:
                if option in ("|", "&&", ";", "make") or option.endswith("siamese-bench"):
                    break
                if re.fullmatch(r"--[a-z][\w-]*(=.*)?", option):
                    found.append(Name("option", f"{command} {option.split('=')[0]}", where))
    return found


def path_exists(text: str, page_dir: Path | None) -> bool:
    if text.startswith(MADE) or "*" in text or "JOBID" in text or "NAME" in text or "STUDY" in text:
        return True
    first = text.split("/", 1)[0]
    candidates = []
    if first in REPO_FOLDERS:
        candidates.append(REPO / text)
    if first in PACKAGE_FOLDERS:
        candidates.append(PACKAGE / text)
    if page_dir is not None and FILE.search(text):  # a file beside the page (metric names like test/auc are not)
        candidates.append(page_dir / text)
    if not candidates:
        return True  # not a path of this project (a URL's tail, a user's folder, a package's module)
    return any(c.exists() or c.with_suffix(".py").exists() for c in candidates)


def broken(names: list[Name], cli: dict[str, set[str]], page_dirs: dict[str, Path]) -> list[str]:
    targets = make_targets()
    bad = []
    for name in names:
        label = name.where.rsplit(":", 1)[0]
        if name.kind == "path":
            ok = path_exists(name.text, page_dirs.get(label))
        elif name.kind == "link":
            ok = Path(name.text).exists()
        elif name.kind == "target":
            ok = name.text in targets
        elif name.kind == "command":
            ok = name.text in cli
        else:
            command, option = name.text.split(" ", 1)
            if command == "*":
                ok = option in FOREIGN or option in benchmark_options() or any(option in o for o in cli.values())
            else:
                ok = command not in cli or option in cli[command]
        if not ok:
            bad.append(str(name))
    return bad


@pytest.fixture(scope="module")
def everything() -> tuple[list[Name], dict[str, Path]]:
    names: list[Name] = []
    page_dirs: dict[str, Path] = {}
    for page in PAGES:
        label = str(page.relative_to(REPO))
        page_dirs[label] = page.parent
        names += names_in(label, page.read_text(), page)
    for label, text in help_texts():
        names += names_in(label, text, None)
    for label, text in docstrings():
        names += [n for n in names_in(label, text, None) if n.kind == "path"]
    return names, page_dirs


def test_every_name_the_docs_and_help_mention_exists(everything, cli):
    names, page_dirs = everything
    assert len(names) > 300 and {n.kind for n in names} == {"path", "link", "target", "command", "option"}
    assert broken(names, cli, page_dirs) == []
    print(
        f"\n{len(names)} names checked: "
        + ", ".join(f"{k} {sum(n.kind == k for n in names)}" for k in sorted({n.kind for n in names}))
    )


def test_the_check_finds_what_is_gone(cli, tmp_path):
    """The check can fail: a missing file, an unknown target, subcommand and option are each reported."""
    page = tmp_path / "page.md"
    text = (
        "See `siamese_bench/sweep/nope.py` and [this](missing.md); run `make no-such-target`, "
        "`siamese-bench frobnicate`, `siamese-bench train --heads x` and `siamese-bench sweep mnist --jobs 2`."
    )
    names = names_in("page.md", text, page)
    bad = broken(names, cli, {"page.md": tmp_path})
    assert [b.split(": ", 1)[1] for b in bad] == [
        "path siamese_bench/sweep/nope.py",
        f"link {tmp_path / 'missing.md'}",
        "target no-such-target",
        "command frobnicate",
        "option train --heads",
    ]
