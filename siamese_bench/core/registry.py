"""Name -> factory registries, so that adding a head, loss, encoder or dataset is one class plus
one decorator line, and an unknown name fails at once with the list of valid ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from siamese_bench.core.errors import UserError

T = TypeVar("T")


class UnknownNameError(UserError, KeyError):
    """Raised for a name that is not registered; its message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class DuplicateNameError(UserError, ValueError):
    """A name registered twice: by two plugins, or by a plugin and a built-in."""


class Registry(Generic[T]):
    """A dict from name to factory with a `register` decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            if name in self._items:
                owner = getattr(self._items[name], "__module__", "?") or "?"
                builtin = " (a built-in)" if owner.startswith("siamese_bench.") else ""
                raise DuplicateNameError(
                    f"{self.kind} {name!r} is already registered by {owner}{builtin}: choose another name"
                )
            self._items[name] = obj
            return obj

        return decorate

    def is_builtin(self, name: str) -> bool:
        """Registered by the package itself, not by a plugin."""
        return str(getattr(self.get(name), "__module__", "")).startswith("siamese_bench.")

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
