"""``inpaintgan eval`` and ``inpaintgan masks`` (to be written)."""


def register(sub) -> None:
    pass
