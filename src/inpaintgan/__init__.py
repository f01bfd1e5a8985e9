"""inpaintgan: image inpainting with generative adversarial networks.

Public API::

    from inpaintgan import Inpainter, list_models, list_methods
    inpainter = Inpainter.from_pretrained("default")
    result = inpainter("photo.jpg", "mask.png")   # PIL image, same size as the photo
"""

__version__ = "0.1.0"

from inpaintgan.registry import list_methods  # noqa: E402


def __getattr__(name):  # lazy: importing the package stays cheap
    if name in ("Inpainter", "list_models"):
        from inpaintgan import inpainter

        return getattr(inpainter, name)
    raise AttributeError(f"module 'inpaintgan' has no attribute {name!r}")


__all__ = ["Inpainter", "__version__", "list_methods", "list_models"]
