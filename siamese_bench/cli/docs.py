"""`siamese-bench docs`: the documentation generated from the code, so it cannot drift from it.

Writes docs/schemas/*.schema.json, the JSON Schema of every file format the project reads
(training options, study spec, claims file, regression checks), each generated from the one
pydantic model that validates that format; `--check` compares instead of writing and fails,
naming the stale files, when the code has changed and the docs have not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

FORMATS = {  # file name -> (module, model): the one schema of each file format
    "train-config": ("siamese_bench.core.config", "TrainConfig"),
    "study-spec": ("siamese_bench.sweep.spec", "StudySpec"),
    "claims": ("siamese_bench.report.claims", "ClaimsFile"),
    "regress-checks": ("siamese_bench.regress.checks", "RegressChecks"),
}


def schemas() -> dict[str, str]:
    """File name -> JSON Schema text of every file format."""
    import importlib

    out = {}
    for name, (module, model) in FORMATS.items():
        cls = getattr(importlib.import_module(module), model)
        schema = cls.model_json_schema()
        schema["$id"] = f"https://siamese-bench/schemas/{name}.schema.json"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=False) + "\n"
    return out


def generated(out: Path) -> dict[Path, str]:
    """Every generated file under `out` with its content."""
    return {out / "schemas" / name: text for name, text in schemas().items()}


def cmd_docs(args: argparse.Namespace) -> int:
    files = generated(Path(args.out))
    if args.check:
        stale = [str(p) for p, text in files.items() if not p.is_file() or p.read_text() != text]
        if stale:
            print(f"siamese-bench: error: stale generated docs (run `siamese-bench docs`): {', '.join(stale)}",
                  file=sys.stderr)
            return 1
        print(f"docs: {len(files)} generated files up to date")
        return 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


def register(sub: Any, full: bool) -> None:
    p = sub.add_parser("docs", help="write the docs generated from the code (JSON Schemas of the file formats)",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("--out", default="docs", help="the docs folder (default %(default)s)")
    p.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 naming stale files")
    p.set_defaults(func=cmd_docs)
