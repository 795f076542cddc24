"""Plugins: a file or module registering its own parts; every way one can fail is one line
naming the file (and line) and what to do."""

from __future__ import annotations

import hashlib
import textwrap
import uuid
from pathlib import Path

import pytest

from siamese_bench import HEADS
from siamese_bench.core import plugins
from siamese_bench.core.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "plugin.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def head_plugin(name: str) -> str:
    return f'''
        import torch
        from siamese_bench import HEADS, ProbabilisticHead

        @HEADS.register("{name}")
        class MyHead(ProbabilisticHead):
            symmetric = True

            def pair_features(self, a, b):
                return a * b
        '''


def test_a_file_plugin_registers_once_and_records_its_hash(tmp_path):
    name = f"head-{uuid.uuid4().hex[:8]}"
    path = write(tmp_path, head_plugin(name))
    first = plugins.load(str(path))
    assert name in HEADS and not HEADS.is_builtin(name)
    assert first.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and first.path == str(path.resolve())
    assert plugins.load(str(path)) == first  # a second load (spec and --plugin both name it) is a no-op
    assert plugins.tags([first]) == {f"plugin.{path.stem}": first.sha256}


def test_paths_are_resolved_against_the_file_that_lists_them(tmp_path):
    assert plugins.resolve(["heads/mine.py", "my_package.heads"], tmp_path) == [
        str(tmp_path / "heads" / "mine.py"),
        "my_package.heads",
    ]


def test_a_file_given_by_a_relative_path_resolves_to_one_absolute_path(tmp_path, monkeypatch):
    """`decide examples/own-head/claims.yaml`: the folder is relative; resolving again (the study spec decide
    builds does) must not prefix it twice."""
    monkeypatch.chdir(tmp_path)
    once = plugins.resolve(["mine.py"], Path("examples/own-head"))
    assert once == [str(tmp_path / "examples" / "own-head" / "mine.py")]
    assert plugins.resolve(once, Path("examples/own-head")) == once


def test_a_module_plugin_on_the_path(tmp_path, monkeypatch):
    name = f"head-{uuid.uuid4().hex[:8]}"
    module = f"my_plugin_{uuid.uuid4().hex[:8]}"
    write(tmp_path, head_plugin(name), f"{module}.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = plugins.load(module)
    assert loaded.module == module and name in HEADS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = (\n", "line 1: syntax error"),
        (
            "import numpy\nimport no_such_package_here\n",
            "line 2: No module named 'no_such_package_here': install what it imports, or fix the import",
        ),
        (
            "from siamese_bench import HEADS, Head\n\n@HEADS.register('euclidean')\nclass Mine(Head):\n    pass\n",
            "line 3: head 'euclidean' is already registered by siamese_bench.models.heads (a built-in): choose another "
            "name",
        ),
        ("raise RuntimeError('boom')\n", "line 1: RuntimeError: boom"),
    ],
)
def test_a_bad_plugin_is_one_line_naming_file_and_line(tmp_path, text, message):
    path = write(tmp_path, text, f"bad_{uuid.uuid4().hex[:8]}.py")
    with pytest.raises(ConfigError) as err:
        plugins.load(str(path))
    assert str(err.value).startswith(f"plugin {path.resolve()}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_missing_file_or_module_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        plugins.load(str(tmp_path / "nope.py"))
    with pytest.raises(ConfigError, match="no such module"):
        plugins.load("no_such_plugin_module_anywhere")


def test_two_plugins_registering_one_name_name_the_first(tmp_path):
    name = f"head-{uuid.uuid4().hex[:8]}"
    first = write(tmp_path, head_plugin(name), "first.py")
    plugins.load(str(first))
    second = write(tmp_path, head_plugin(name), "second.py")
    with pytest.raises(ConfigError) as err:
        plugins.load(str(second))
    assert f"head '{name}' is already registered by siamese_bench_plugin_first_" in str(err.value)
    assert "(a built-in)" not in str(err.value)


def test_installed_packages_plugins_come_from_the_entry_point_group(tmp_path, monkeypatch):
    name = f"head-{uuid.uuid4().hex[:8]}"
    module = f"ep_plugin_{uuid.uuid4().hex[:8]}"
    write(tmp_path, head_plugin(name), f"{module}.py")
    monkeypatch.syspath_prepend(str(tmp_path))

    class EntryPoint:
        value = f"{module}:register"

    monkeypatch.setattr(
        plugins, "entry_points", lambda group: [EntryPoint()] if group == plugins.ENTRY_POINT_GROUP else []
    )
    loaded = plugins.load_all([])
    assert [p.module for p in loaded] == [module] and name in HEADS
