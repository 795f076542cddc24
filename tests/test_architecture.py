"""The package's shape, read from its own imports: layers that never import upwards, a small
package root, modules of at most about 400 lines, and a report and a schema that load no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "siamese_bench"
# Top to bottom; a module may import its own folder and any folder on a lower level, never one on
# its own level or above. Infrastructure sits beside the layers on level 1: used by them, using core.
LAYERS = {
    "cli": 6,
    "decide": 5,
    "sweep": 4,
    "report": 4,
    "regress": 4,
    "training": 3,
    "models": 2,
    "evaluation": 2,
    "data": 2,
    "infra": 1,
    "core": 0,
}
ROOT_MODULES = 6
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def folder(module: str) -> str | None:
    """'siamese_bench.sweep.runner' -> 'sweep'; the package root itself -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of the package in the file, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [(node.lineno, n) for n in names if n.startswith("siamese_bench.")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("siamese_bench.")]
    return found


def upward_imports() -> list[str]:
    bad = []
    for path in modules():
        here = folder("siamese_bench." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        if here is None:
            continue  # the package root: its face re-exports names for plugins (lazily)
        for line, name in imports(path):
            there = folder(name)
            if there is not None and there != here and LAYERS[there] >= LAYERS[here]:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} imports {name} ({there})")
    return bad


def test_every_folder_of_the_package_is_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders <= set(LAYERS), f"folders without a layer: {sorted(folders - set(LAYERS))}"


def test_no_import_points_up_or_sideways():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path):
    """The rule above can fail: a core module importing training is found."""
    fake = tmp_path / "fake.py"
    fake.write_text("from siamese_bench.training.run import run_training\n")
    assert imports(fake) == [(1, "siamese_bench.training.run"), (1, "siamese_bench.training.run.run_training")]
    assert LAYERS[folder("siamese_bench.training.run")] > LAYERS["core"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_cycles() -> list[list[str]]:
    """Cycles among the package's modules through imports at module level (TYPE_CHECKING blocks included; a
    lazy import inside a function is how a cycle is broken on purpose, so it is left out)."""
    known = {module_name(p) for p in modules()}
    graph: dict[str, set[str]] = {}
    for path in modules():
        found: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            for sub in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
                if isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                    names = [f"{sub.module}.{a.name}" for a in sub.names] + [sub.module]
                    found |= {n for n in names if n in known}
                elif isinstance(sub, ast.Import):
                    found |= {a.name for a in sub.names if a.name in known}
        graph[module_name(path)] = found - {module_name(path)}
    cycles, state = [], dict.fromkeys(graph, 0)  # 0 new, 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state[nxt] == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif state[nxt] == 0:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if state[node] == 0:
            visit(node, [node])
    # a package's __init__ importing its own modules, which import the package's other names, is not a cycle
    return [c for c in cycles if not any(b.startswith(a + ".") for a, b in zip(c, c[1:], strict=False))]


def test_no_two_modules_import_each_other():
    assert import_cycles() == []


def test_the_package_root_holds_at_most_six_modules():
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= ROOT_MODULES, root


def test_no_module_is_longer_than_about_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def _loads_torch(code: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-c", f"import sys; {code}; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.slow  # separate processes or the full archives: several seconds
def test_the_report_the_cli_parser_and_the_schemas_load_no_torch():
    assert not _loads_torch("import siamese_bench.report.build, siamese_bench.report.claims")
    assert not _loads_torch("from siamese_bench.cli import build_parser; build_parser('report')")
    # every file format's schema (the study spec's and the regression checks' too): training loads
    # only when a file's configurations are checked against the registries
    assert not _loads_torch("from siamese_bench.cli.docs import schemas; schemas()")
    assert _loads_torch("import siamese_bench.training.run")  # the probe itself can fail


@pytest.mark.slow  # one real training in its own process (~10 s)
def test_untracked_training_imports_neither_mlflow_nor_optuna():
    """A borrowed GPU machine has PyTorch and Lightning but not our other dependencies: the
    GPU check's untracked training must run there."""
    code = (
        "import sys; from siamese_bench.cli import main; "
        "main(['train', '--dataset', 'digits', '--epochs', '1', '--no-track', '--no-progress']); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'optuna'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
