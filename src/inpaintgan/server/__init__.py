"""The web UI and REST API (``inpaintgan serve``): an ASGI app (FastAPI) around one shared
:class:`~inpaintgan.inpainter.Inpainter`.

    from inpaintgan.server import create_app, ServerLimits
    app = create_app(model="default")                 # or create_app(Inpainter(...)): a model in memory
    app = create_app(inpainter, limits=ServerLimits(max_queued=8))
    # uvicorn.run(app, host="127.0.0.1", port=8080)

FastAPI is imported on first use of these names, so ``import inpaintgan.server`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "ServerLimits"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from inpaintgan.server import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
