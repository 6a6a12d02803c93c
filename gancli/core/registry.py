"""Name → factory tables, so a variant is added by a new module, not an `if` chain."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

from gancli.core.errors import GanError

T = TypeVar("T")


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    """A named table of factories; `REG.register("name")` decorates a class or function. A name it does not
    know first loads the installed plugins (`gancli.core.plugins`), which may register it."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        if name not in self._items:
            from gancli.core.plugins import load_plugins

            load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise GanError(
                f"unknown {self.kind} '{name}'; choose one of: {', '.join(sorted(self._items))}."
                + did_you_mean(str(name), self._items)
            ) from None

    def names(self) -> list[str]:
        """Every registered name, the plugins' included."""
        from gancli.core.plugins import load_plugins

        load_plugins()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._items[name]) for name in self.names()]

    def __contains__(self, name: str) -> bool:
        return name in self._items
