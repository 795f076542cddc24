"""What a claims file needs run: every row's cell and the cell it is compared with, as one study.

A row's `select` (and `versus`) are training options set on the file's `base`, so each names one
cell; the study holds those cells and up to --max-seeds seeds each, from the file's `first_seed`
on, which decide fills in rounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siamese_bench.core import plugins, specs
from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError
from siamese_bench.report.claims import ClaimRow, ClaimsFile
from siamese_bench.report.load import parse_cell
from siamese_bench.sweep.spec import Cell, StudySpec
from siamese_bench.training.build import check_config

ANY_VARIANT = ("*",)  # decide's study holds only the file's cells: whatever data they ran on is theirs


@dataclass
class Plan:
    path: Path
    spec: StudySpec
    rows: list[ClaimRow]
    cells_of: dict[str, tuple[str, ...]] = field(default_factory=dict)  # row id -> its cell ids
    select_of: dict[str, dict[str, Any]] = field(default_factory=dict)  # row id -> its own cell's options
    plugins: list[str] = field(default_factory=list)  # resolved names, for the sweeps' workers


def _values(select: dict[str, Any], where: str) -> dict[str, Any]:
    """A row's select as training options: `cell: head=...,loss=...` is spelled out."""
    if "cell" in select:
        parsed: dict[str, Any] = dict(parse_cell(str(select["cell"])))
        return {**parsed, **{k: v for k, v in select.items() if k != "cell"}}
    if not select:
        raise ConfigError(f"{where}: selects no cell (give training options, e.g. head: ..., loss: ...)")
    return dict(select)


def make_plan(path: str | Path, max_seeds: int, extra_plugins: list[str] | None = None) -> Plan:
    """Read the claims file, load its plugins, check every cell's configuration once."""
    path = specs.find(path, "claims file")
    claims, lines = ClaimsFile.load(path, "claims file")
    names = plugins.resolve(claims.plugins, path.parent) + plugins.resolve(extra_plugins or [])
    plugins.load_all(names)
    base = TrainConfig.parse(claims.base, f"{path}: base", {k[1:]: v for k, v in lines.items() if k[:1] == ("base",)})
    cells: dict[str, dict[str, Any]] = {}
    cells_of: dict[str, tuple[str, ...]] = {}
    select_of: dict[str, dict[str, Any]] = {}
    rows = []
    for i, row in enumerate(claims.rows):
        where = f"{path}: line {lines.get(('rows', i), 1)}: row {row.id!r}"
        ids = []
        for select in filter(None, (row.select, row.versus)):
            values = _values(select, where)
            cell = Cell(values)
            try:
                check_config(base.with_values(values))
            except ConfigError as err:
                raise ConfigError(f"{where}: cell {cell.id}: {err}") from None
            cells.setdefault(cell.id, values)
            select_of.setdefault(row.id, values)
            ids.append(cell.id)
        cells_of[row.id] = tuple(ids)
        if "variants" not in row.model_fields_set:
            row = row.model_copy(update={"variants": ANY_VARIANT})
        rows.append(row)
    spec = StudySpec.parse(
        {
            "name": claims.name or path.stem,
            "description": claims.notes,
            "base": base.model_dump(),
            "include": list(cells.values()),
            "seeds": list(range(claims.first_seed, claims.first_seed + max_seeds)),
            "plugins": names,
        },
        str(path),
    )
    spec._path = path
    return Plan(path, spec, rows, cells_of, select_of, names)
