"""What the ``psiturk`` surface offers where turnout has no equivalent: a clear error.

Every module of psiTurk 3.3.1 imports under turnout, so a custom.py that imports one at
the top (and uses it only in a rarely visited admin route) still starts. Calling what
turnout does not provide raises ``NotProvidedByTurnout``, a ``PsiturkException`` (so
project code that catches psiTurk's errors catches it too), naming what to use instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from turnout.compat.psiturk.psiturk_exceptions import PsiturkException


class NotProvidedByTurnout(PsiturkException, NotImplementedError):
    """A psiTurk name that exists under turnout only so that imports keep working."""

    def __init__(self, name: str, instead: str) -> None:
        super().__init__(message=f"{name} is not provided by turnout; {instead}")
        self.name = name
        self.instead = instead


def refuse(name: str, instead: str) -> NoReturn:
    raise NotProvidedByTurnout(name, instead)


def function(name: str, instead: str) -> Callable[..., Any]:
    """A stand-in for a psiTurk function: importable, and raising when called."""

    def unsupported(*_args: Any, **_kwargs: Any) -> NoReturn:
        refuse(name, instead)

    unsupported.__name__ = unsupported.__qualname__ = name.rsplit(".", 1)[-1]
    unsupported.__doc__ = f"Not provided by turnout: {instead}."
    return unsupported


def cls(name: str, instead: str, base: type = object) -> type:
    """A stand-in for a psiTurk class: importable and subclassable; making one raises."""

    def __init__(self: Any, *_args: Any, **_kwargs: Any) -> None:
        refuse(name, instead)

    short = name.rsplit(".", 1)[-1]
    return type(short, (base,), {"__init__": __init__, "__doc__": f"Not provided by turnout: {instead}."})


def module_getattr(module: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for psiTurk objects that are not callables (blueprints,
    schedulers): reading one raises the clear error; any other name is an AttributeError."""

    def __getattr__(attr: str) -> Any:
        if attr in names:
            refuse(f"{module}.{attr}", names[attr])
        raise AttributeError(f"module {module!r} has no attribute {attr!r}")

    return __getattr__


class UnsupportedObject:
    """A stand-in for a psiTurk object (its scheduler, say): any use of it raises the clear error."""

    def __init__(self, name: str, instead: str) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_instead", instead)

    def __getattr__(self, attr: str) -> NoReturn:
        if attr.startswith("__"):
            raise AttributeError(attr)
        refuse(f"{self._name}.{attr}", self._instead)

    def __repr__(self) -> str:
        return f"<{self._name}: not provided by turnout>"
