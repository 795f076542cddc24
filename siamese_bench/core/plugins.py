"""Plugins: a user's own heads, losses, encoders, miners or datasets, registered by importing a
Python file or module that uses the public API (`from siamese_bench import HEADS, Head, ...`).

A plugin is named by a path (`my_head.py`, relative to the spec or claims file that lists it) or
an importable module (`my_package.heads`), given by `--plugin`, a `plugins:` list, or the
entry-point group `siamese_bench.plugins` of an installed package. Loading is idempotent per
file, so every process (a sweep's workers, each machine of a study) can load the same list.
A plugin that cannot load is one ConfigError line naming the file (and line) and what to do.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from siamese_bench.core.errors import ConfigError, UserError

ENTRY_POINT_GROUP = "siamese_bench.plugins"
TAG_PREFIX = "plugin."  # MLflow tags: plugin.<module> = <sha256 of its file>


@dataclass(frozen=True)
class Plugin:
    """A loaded plugin: the module's name, its file, and the file's sha256 (provenance)."""

    module: str
    path: str
    sha256: str

    def tag(self) -> tuple[str, str]:
        return f"{TAG_PREFIX}{self.module}", self.sha256


_LOADED: dict[str, Plugin] = {}  # resolved file path -> plugin: a process loads each file once


def is_path(name: str) -> bool:
    return name.endswith(".py") or "/" in name or name.startswith(".")


def resolve(names: Iterable[str], base: Path | None = None) -> list[str]:
    """Paths made absolute against `base` (the folder of the file that lists them); module
    names kept. What a sweep hands to its workers and records."""
    out = []
    for name in names:
        if is_path(name):
            path = Path(name).expanduser()
            out.append(str((base / path if base is not None and not path.is_absolute() else path).absolute()))
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _where(err: BaseException, path: Path) -> str:
    """'line N' of the deepest frame inside the plugin's file, where the error arose."""
    line = None
    for frame in traceback.extract_tb(err.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            line = frame.lineno
    return f"line {line}: " if line else ""


def _module_name(path: Path) -> str:
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"siamese_bench_plugin_{stem}_{digest}"


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ConfigError(f"plugin {path}: no such file (paths in a spec or claims file are relative to that file)")
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"plugin {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        del sys.modules[name]
        raise ConfigError(f"plugin {path}: line {err.lineno}: syntax error: {err.msg}") from None
    except ImportError as err:
        del sys.modules[name]
        raise ConfigError(
            f"plugin {path}: {_where(err, path)}{err}: install what it imports, or fix the import"
        ) from None
    except UserError as err:  # e.g. a name registered twice
        del sys.modules[name]
        raise ConfigError(f"plugin {path}: {_where(err, path)}{err}") from None
    except Exception as err:  # noqa: BLE001  (anything the plugin's own code raises at import)
        del sys.modules[name]
        raise ConfigError(f"plugin {path}: {_where(err, path)}{type(err).__name__}: {err}") from None
    return module


def _load_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and name.startswith(err.name):
            raise ConfigError(
                f"plugin {name}: no such module (a file needs a path ending in .py; a module must "
                "be importable: installed, or on PYTHONPATH)"
            ) from None
        raise ConfigError(f"plugin {name}: {err}: install what it imports") from None
    except UserError as err:
        raise ConfigError(f"plugin {name}: {err}") from None
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"plugin {name}: {type(err).__name__}: {err}") from None


def load(name: str) -> Plugin:
    """Import one plugin (a file path or a module name), once per process."""
    if is_path(name):
        path = Path(name).expanduser().resolve()
        if str(path) in _LOADED:
            return _LOADED[str(path)]
        module = _load_file(path)
    else:
        existing = sys.modules.get(name)
        module = existing if existing is not None else _load_module(name)
        path = Path(module.__file__ or name).resolve()
        if str(path) in _LOADED:
            return _LOADED[str(path)]
    plugin = Plugin(
        module.__name__ if not is_path(name) else path.stem, str(path), _sha256(path) if path.is_file() else ""
    )
    _LOADED[str(path)] = plugin
    return plugin


def load_all(names: Sequence[str] = (), entry_points_too: bool = True) -> list[Plugin]:
    """The installed packages' plugins (entry-point group siamese_bench.plugins), then `names`."""
    plugins = []
    if entry_points_too:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            plugins.append(load(ep.value.split(":", 1)[0]))
    plugins += [load(n) for n in names]
    return list(dict.fromkeys(plugins))


def tags(plugins: Iterable[Plugin]) -> dict[str, str]:
    """MLflow tags recording what a run loaded: plugin.<module> = sha256."""
    return dict(p.tag() for p in plugins)
