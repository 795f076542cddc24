"""Spec and claims files are data: read with YAML's safe loader only, errors naming the file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from siamese_bench.errors import ConfigError


def load_yaml(path: Path, what: str) -> Any:
    """The parsed file; a ConfigError of one line for a missing file, bad YAML, or a tag that
    would build Python objects (`!!python/object`...), which safe loading refuses."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a {what}") from None
    except yaml.constructor.ConstructorError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}" if mark else "somewhere"
        tag = (err.problem or "").split("tag", 1)[-1].strip(" '")
        raise ConfigError(f"{path}: {where}: the tag {tag!r} is not allowed: a {what} is plain data "
                          "(read with YAML's safe loader, which builds no Python objects)") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}: {where}not valid YAML: {problem}") from None


def check_keys(mapping: Any, allowed: Iterable[str], where: str, noun: str = "key") -> dict:
    """The one check of a mapping's keys, for every file and config the project reads: a
    mapping whose keys are all allowed, or ConfigError naming the unknown ones and the valid
    ones. `where` prefixes the message (a file, or file: section)."""
    prefix = f"{where}: " if where else ""
    if not isinstance(mapping, dict):
        raise ConfigError(f"{prefix}expected a mapping, got {type(mapping).__name__}")
    allowed = set(allowed)
    unknown = sorted(str(k) for k in set(mapping) - allowed)
    if unknown:
        raise ConfigError(f"{prefix}unknown {noun}(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")
    return mapping

