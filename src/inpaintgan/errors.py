"""The exception a caller of the Python API gets for an input it cannot use, whatever check found it:
:class:`InpaintInputError` (a ``ValueError``, and a ``TypeError`` too, so ``except ValueError`` and
``except TypeError`` written for earlier versions still work). The more specific project errors
(:class:`~inpaintgan.imageio.ImageReadError`, :class:`~inpaintgan.imageio.MaskError`,
:class:`~inpaintgan.checkpoints.CheckpointError`, :class:`~inpaintgan.finite.NonFiniteInputError`)
pass through unchanged."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class InpaintInputError(ValueError, TypeError):
    """An input, option or image the Inpainter cannot use (the message says which and why)."""


def project_errors(fn: F) -> F:
    """Re-raise a plain ``ValueError`` / ``TypeError`` from ``fn`` as :class:`InpaintInputError`
    (same message); the project's own errors and everything else pass through."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError) as e:
            if type(e).__module__.startswith("inpaintgan"):
                raise
            raise InpaintInputError(str(e)) from e

    return wrapper  # type: ignore[return-value]
