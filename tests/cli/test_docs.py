"""Generated docs: the checked-in JSON Schemas, specs.md, results.md and the README's claims table
are what the code renders (results from the checked-in snapshot of the runs, docs/results.json)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from siamese_bench.cli.docs import BEGIN, END, FORMATS, _same, cmd_docs, generated

REPO = Path(__file__).resolve().parents[2]


def args(out: Path, readme: Path, check: bool) -> argparse.Namespace:
    return argparse.Namespace(out=str(out), readme=str(readme), results=False, tracking_uri=None, check=check)


@pytest.fixture(scope="module")
def checked_in() -> dict[Path, str | bytes]:
    """The generated docs of this checkout, rendered once for the tests that read them (~10 s)."""
    return generated(REPO / "docs", REPO / "README.md")


def test_checked_in_generated_docs_are_up_to_date(checked_in):
    files = checked_in
    stale = [str(p) for p, content in files.items() if not _same(p, content)]
    assert stale == [], "run `make docs` (siamese-bench docs) and commit the result"
    # results.md, the claims figure and the README's table are rendered from the checked-in snapshot, not typed
    assert {REPO / "docs" / "results.md", REPO / "docs" / "figures" / "claims.png", REPO / "README.md"} <= set(files)


def one_study_snapshot(folder: Path) -> None:
    """docs/results.json cut to one small study, in `folder`: for tests of the flow, not the content."""
    snap = json.loads((REPO / "docs" / "results.json").read_text())
    snap["studies"] = [s for s in snap["studies"] if s["name"] == "mnist-full"]
    (folder / "results.json").write_text(json.dumps(snap))


def test_check_fails_on_a_stale_file_and_names_it(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold table\n{END}\nrest\n")
    one_study_snapshot(tmp_path)  # the check and the writing, not the rendering, are tested here
    assert cmd_docs(args(tmp_path, readme, check=False)) == 0
    assert cmd_docs(args(tmp_path, readme, check=True)) == 0
    assert readme.read_text().startswith("intro\n") and readme.read_text().endswith(f"{END}\nrest\n")
    assert "old table" not in readme.read_text() and "| **C1**: " in readme.read_text()
    assert (tmp_path / "results.md").is_file() and (tmp_path / "figures" / "claims.png").stat().st_size > 0
    stale = tmp_path / "schemas" / "study-spec.schema.json"
    stale.write_text(stale.read_text().replace('"seeds"', '"seed"'))
    assert cmd_docs(args(tmp_path, readme, check=True)) == 1
    assert "study-spec.schema.json" in capsys.readouterr().err


def test_rendering_twice_in_one_process_gives_the_same_bytes(tmp_path):
    """No state carried from one rendering to the next (figures included). Across processes, the
    up-to-date test above compares a fresh rendering with what `make docs` wrote."""
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\n{END}\n")
    one_study_snapshot(tmp_path)
    first = generated(tmp_path, readme)
    assert tmp_path / "figures" / "claims.png" in first and readme in first
    assert generated(tmp_path, readme) == first


def test_each_schema_forbids_unknown_keys_and_names_the_fields():
    for name in FORMATS:
        schema = json.loads((REPO / "docs" / "schemas" / f"{name}.schema.json").read_text())
        assert schema["additionalProperties"] is False and schema["properties"], name
    spec = json.loads((REPO / "docs" / "schemas" / "study-spec.schema.json").read_text())
    assert {"name", "seeds"} <= set(spec["required"])


def test_specs_list_built_in_names_only_whatever_plugins_are_loaded(monkeypatch):
    """A plugin loaded in the same process (as other tests and --plugin do) must not leak into specs.md."""
    from siamese_bench.cli.docs import specs_md
    from siamese_bench.models.heads import HEADS

    monkeypatch.setitem(HEADS._items, "plugin-only-head", type("PluginHead", (), {"__module__": "my_plugin"}))
    assert "plugin-only-head" in HEADS.names()
    assert "plugin-only-head" not in specs_md() and "`euclidean`" in specs_md()
