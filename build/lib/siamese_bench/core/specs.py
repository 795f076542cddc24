"""The specs the package ships (siamese_bench/specs/*.yaml, package data): study specs, claims
files and the regression checks, each found by its name, which is also its study's name, its
report folder and its make target (`sweep mnist` is specs/mnist.yaml, study mnist, `make bench-mnist`).

The rule: an argument that names an existing file is that file; else a shipped spec of that name.
"""

from __future__ import annotations

from pathlib import Path

from siamese_bench.core.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[1] / "specs"


def shipped() -> list[str]:
    return sorted(p.stem for p in SHIPPED.glob("*.yaml"))


def find(name: str | Path, what: str) -> Path:
    """The file `name` names: itself when it exists, else the shipped spec of that name."""
    path = Path(name)
    if path.is_file():
        return path
    candidate = SHIPPED / f"{path.stem if path.suffix in ('.yaml', '.yml') else name}.yaml"
    if path.parent == Path(".") and candidate.is_file():
        return candidate
    raise ConfigError(f"{name}: no such {what}, and no shipped spec of that name (shipped: {', '.join(shipped())})")
