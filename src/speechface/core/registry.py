"""Registries: one plain dictionary per family, filled by a decorator.

Importing :mod:`speechface` imports every built-in module, which registers it. A user adds an
entry the same way the built-ins do::

    from speechface.core.registry import ESTIMATORS

    @ESTIMATORS.register("my_net")
    class MyNet(Estimator):
        ...

Names can be listed with shell-style wildcards: ``ESTIMATORS.list("*cnn*")``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")

__all__ = ["Registry", "FEATURES", "ESTIMATORS", "SPACES", "TRANSLATORS", "EXPRESSION", "REGISTRIES"]


class Registry(Generic[T]):
    """A named family of constructors (classes or factory functions) or data objects.

    Args:
        family: human-readable name used in messages, e.g. ``"estimators"``.
    """

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None, *, overwrite: bool = False) -> Callable[[T], T]:
        """Decorator that adds ``obj`` under ``name`` (default: ``obj.__name__`` lower-cased).

        Registering a name twice is an error unless ``overwrite=True``.
        """

        def deco(obj: T) -> T:
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise ValueError(f"cannot register {obj!r} in {self.family}: give it a name")
            key = key.lower() if name is None else key
            if key in self._entries and not overwrite and self._entries[key] is not obj:
                raise ValueError(f"{self.family} already has an entry named {key!r}")
            self._entries[key] = obj
            if isinstance(obj, type):
                obj.registry_name = key  # type: ignore[attr-defined]
            return obj

        return deco

    def add(self, name: str, obj: T, *, overwrite: bool = False) -> T:
        """Add a data entry (for example a conditioning space) under ``name``."""
        return self.register(name, overwrite=overwrite)(obj)

    def get(self, name: str) -> T:
        """Return the entry called ``name``; raise :class:`UnknownNameError` listing the choices."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise UnknownNameError(f"unknown {self.family[:-1] if self.family.endswith('s') else self.family} {name!r}; "
                                   f"registered {self.family}: {known}") from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the constructor registered as ``name`` with the given arguments."""
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell-style ``pattern`` (``"cnn*"``, ``"*gru"``)."""
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())

    def unregister(self, name: str) -> None:
        """Remove an entry (mainly for tests that register temporary models)."""
        self._entries.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, {self.list()})"


FEATURES: Registry[Any] = Registry("feature extractors")
ESTIMATORS: Registry[Any] = Registry("estimators")
SPACES: Registry[Any] = Registry("conditioning spaces")
TRANSLATORS: Registry[Any] = Registry("image translators")
EXPRESSION: Registry[Any] = Registry("expression recognisers")

REGISTRIES: dict[str, Registry[Any]] = {
    "features": FEATURES,
    "estimators": ESTIMATORS,
    "spaces": SPACES,
    "translators": TRANSLATORS,
    "expression": EXPRESSION,
}
