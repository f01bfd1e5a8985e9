"""Method registry: a name maps to an :class:`~inpaintgan.methods.base.InpaintMethod` subclass.

Methods register themselves with :func:`register_method`; everything else (trainer, CLI, Inpainter)
looks them up by name, so adding a method is one file and one import line in ``methods/__init__``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_METHODS: dict[str, type] = {}


class UnknownNameError(KeyError):
    """An unknown method / model / key; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0]) if self.args else ""


def register_method(name: str) -> Callable[[T], T]:
    """Class decorator: register a method under ``name`` (duplicates raise)."""

    def deco(cls: T) -> T:
        if name in _METHODS:
            raise ValueError(f"method {name!r} is already registered by {_METHODS[name].__qualname__}")
        cls.name = name  # type: ignore[attr-defined]
        _METHODS[name] = cls  # type: ignore[assignment]
        return cls

    return deco


def get_method(name: str) -> type:
    """Return the method class registered as ``name``; unknown names list the known ones."""
    import inpaintgan.methods  # noqa: F401  (registers the built-in methods)

    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown method {name!r}; known methods: {', '.join(sorted(_METHODS)) or '(none)'}"
        ) from None


def list_methods() -> list[str]:
    """Names of all registered methods, sorted."""
    import inpaintgan.methods  # noqa: F401

    return sorted(_METHODS)
