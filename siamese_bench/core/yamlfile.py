"""Spec, claims and check files are data: read with YAML's safe loader only, errors naming the
file, and the line of every key kept so that a schema error can point at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from siamese_bench.core.errors import ConfigError

Loc = tuple[str | int, ...]


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a {what}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the {what}: {err}") from None


def _yaml_error(path: Path, what: str, err: yaml.YAMLError) -> ConfigError:
    mark = getattr(err, "problem_mark", None)
    if isinstance(err, yaml.constructor.ConstructorError):
        where = f"line {mark.line + 1}" if mark else "somewhere"
        tag = (err.problem or "").split("tag", 1)[-1].strip(" '")
        return ConfigError(
            f"{path}: {where}: the tag {tag!r} is not allowed: a {what} is plain data "
            "(read with YAML's safe loader, which builds no Python objects)"
        )
    where = f"line {mark.line + 1}: " if mark else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return ConfigError(f"{path}: {where}not valid YAML: {problem}")


def _lines(node: yaml.Node | None, loc: Loc, out: dict[Loc, int]) -> None:
    """The 1-based line of every key (mapping entries) and item (sequences) under `node`."""
    if node is None:
        return
    out.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name: str | int = key.value
            if isinstance(key, yaml.ScalarNode) and key.tag.endswith(":int"):
                name = int(key.value)
            out[(*loc, name)] = key.start_mark.line + 1
            _lines(value, (*loc, name), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*loc, i), out)


def load_yaml_with_lines(path: Path, what: str) -> tuple[Any, dict[Loc, int]]:
    """The parsed file and the line of each key; a ConfigError of one line for a missing file,
    bad YAML, or a tag that would build Python objects (`!!python/object`...)."""
    text = _read(path, what)
    try:
        data = yaml.safe_load(text)
        lines: dict[Loc, int] = {}
        _lines(yaml.compose(text, Loader=yaml.SafeLoader), (), lines)
    except yaml.YAMLError as err:
        raise _yaml_error(path, what, err) from None
    return data, lines


def load_yaml(path: Path, what: str) -> Any:
    """The parsed file (see load_yaml_with_lines)."""
    return load_yaml_with_lines(path, what)[0]
