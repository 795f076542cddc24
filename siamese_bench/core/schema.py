"""The one validator of every file format and of the training configuration: pydantic models
(`Schema`), read from YAML with the line of every key kept, so that any error is one line
naming the file, the line and the key, and a JSON Schema can be generated from each model.

Models forbid unknown keys. A wrong key or value gives `ConfigError("FILE: line N: KEY: what
is wrong, got VALUE")`; on the command line (no file) the key is written as its flag, --key.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from siamese_bench.core.errors import ConfigError
from siamese_bench.core.yamlfile import load_yaml_with_lines

Loc = tuple[str | int, ...]
M = TypeVar("M", bound="Schema")


class Schema(BaseModel):
    """Base of every validated file format: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    noun: ClassVar[str] = "key"  # what an unknown key is called in messages ("option" for TrainConfig)

    @classmethod
    def parse(
        cls: type[M], data: Any, where: str = "", lines: Mapping[Loc, int] | None = None, flags: bool = False
    ) -> M:
        """Validate `data`; ConfigError of one line naming `where`, the line and the key (with
        `flags`, a top-level key is named as its command-line flag, --key). Building a model
        directly, Model(...), raises pydantic's own ValidationError instead."""
        try:
            return cls.model_validate({} if data is None else data)
        except ValidationError as err:
            raise ConfigError(describe(err, cls, where, lines, flags)) from None

    @classmethod
    def load(cls: type[M], path: str | Path, what: str) -> tuple[M, dict[Loc, int]]:
        """Read and validate a YAML file; also the line of every key (for later messages)."""
        path = Path(path)
        data, lines = load_yaml_with_lines(path, what)
        return cls.parse(data, str(path), lines), lines


def _key_text(loc: Loc, flags: bool) -> str:
    if flags and len(loc) == 1 and isinstance(loc[0], str):
        return "--" + loc[0].replace("_", "-")
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line(lines: Mapping[Loc, int] | None, loc: Loc) -> int | None:
    """The line of the longest prefix of `loc` the file has (a missing key: its parent's)."""
    if not lines:
        return None
    for end in range(len(loc), -1, -1):
        if tuple(loc[:end]) in lines:
            return lines[tuple(loc[:end])]
    return None


def _unwrap(annotation: Any) -> list[Any]:
    """The classes an annotation can hold (Optional, unions, list and dict values unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return [c for a in typing.get_args(annotation) for c in _unwrap(a)]
    if origin in (list, tuple, set, frozenset):
        return [c for a in typing.get_args(annotation) for c in _unwrap(a)]
    if origin in (dict, Mapping):
        args = typing.get_args(annotation)
        return _unwrap(args[1]) if len(args) == 2 else []
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    return [annotation]


def model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that the mapping at `loc` is validated against (for its valid keys)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int) or part not in current.model_fields:
            continue  # a list index or a dict key: the same item class carries on
        classes = [
            c
            for c in _unwrap(current.model_fields[part].annotation)
            if isinstance(c, type) and issubclass(c, BaseModel)
        ]
        current = classes[0] if classes else None
    return current


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(
    err: ValidationError,
    model: type[BaseModel],
    where: str = "",
    lines: Mapping[Loc, int] | None = None,
    flags: bool = False,
) -> str:
    """One line for the first problem of a ValidationError (unknown keys of one mapping together)."""
    errors = err.errors(include_url=False)
    first = errors[0]
    loc: Loc = tuple(p for p in first["loc"] if not isinstance(p, str) or not p.startswith("function-"))
    line = _line(lines, loc)
    prefix = f"{where}: " if where else ""
    prefix += f"line {line}: " if line else ""
    if first["type"] == "extra_forbidden":
        parent = loc[:-1]
        unknown = sorted(
            str(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden" and tuple(e["loc"][:-1]) == parent
        )
        owner = model_at(model, parent)
        noun = getattr(owner, "noun", "key") if owner else "key"
        valid = f"; valid: {', '.join(sorted(owner.model_fields))}" if owner else ""
        at = f"{_key_text(parent, flags)}: " if parent else ""
        return f"{prefix}{at}unknown {noun}(s) {', '.join(unknown)}{valid}"
    key = _key_text(loc, flags)
    if first["type"] == "missing":
        parent, name = loc[:-1], loc[-1]
        at = f"{_key_text(parent, flags)}: " if parent else ""
        return f"{prefix}{at}missing required key {name!r}"
    message = str(first["msg"]).replace("Input should be", "should be").replace("Value error, ", "")
    if message.startswith("Assertion failed, "):
        message = message.removeprefix("Assertion failed, ")
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    shown = "input" in first and not isinstance(first["input"], dict) and " got " not in f" {message}"
    got = f", got {_got(first['input'])}" if shown else ""
    return f"{prefix}{key + ': ' if key else ''}{message}{got}{more}"


def dump_yaml(data: Any) -> str:
    """YAML as the project writes it back (key order kept)."""
    return yaml.safe_dump(data, sort_keys=False, width=100)
