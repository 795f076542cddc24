"""Generated docs: the checked-in JSON Schemas match the code that validates each file format."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from siamese_bench.cli.docs import FORMATS, cmd_docs, generated

REPO = Path(__file__).resolve().parents[2]


def test_checked_in_schemas_are_up_to_date():
    stale = [str(p) for p, text in generated(REPO / "docs").items() if not p.is_file() or p.read_text() != text]
    assert stale == [], "run `siamese-bench docs` and commit the result"


def test_check_fails_on_a_stale_schema_and_names_it(tmp_path, capsys):
    assert cmd_docs(argparse.Namespace(out=str(tmp_path), check=False)) == 0
    assert cmd_docs(argparse.Namespace(out=str(tmp_path), check=True)) == 0
    stale = tmp_path / "schemas" / "study-spec.schema.json"
    stale.write_text(stale.read_text().replace('"seeds"', '"seed"'))
    assert cmd_docs(argparse.Namespace(out=str(tmp_path), check=True)) == 1
    assert "study-spec.schema.json" in capsys.readouterr().err


def test_each_schema_forbids_unknown_keys_and_names_the_fields():
    for name in FORMATS:
        schema = json.loads((REPO / "docs" / "schemas" / f"{name}.schema.json").read_text())
        assert schema["additionalProperties"] is False and schema["properties"], name
    spec = json.loads((REPO / "docs" / "schemas" / "study-spec.schema.json").read_text())
    assert {"name", "factors", "seeds"} <= set(spec["required"])
