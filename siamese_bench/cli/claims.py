"""`siamese-bench claims check FILE`: validate a claims file (every error with its line) and list its rows."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_claims(args: argparse.Namespace) -> int:
    from siamese_bench.report.claims import ClaimsFile
    from siamese_bench.report.rules import rule_text

    claims, _ = ClaimsFile.load(args.file, "claims file")
    families: dict[str, int] = {}
    for row in claims.rows:
        families[row.holm_family] = families.get(row.holm_family, 0) + 1
    print(
        f"{args.file}: {len(claims.rows)} rows in {len(families)} families"
        + (f", {len(claims.plugins)} plugins" if claims.plugins else "")
    )
    for row in claims.rows:
        versus = f" vs {row.versus}" if row.versus else ""
        print(f"  {row.id} [{row.holm_family}]: {row.select}{versus}; {rule_text(row)}")
    return 0


def register(sub: Any, full: bool) -> None:
    p = sub.add_parser(
        "claims",
        help="check a claims file",
        description="Validate a claims file against its schema "
        "(docs/schemas/claims.schema.json): an error names the file, the line and the key.",
    )
    actions = p.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="validate FILE and list its rows with their rules")
    check.add_argument("file", help="the claims file (YAML)")
    p.set_defaults(func=cmd_claims)
