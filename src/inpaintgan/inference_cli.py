"""``inpaintgan fill / demo / models / download`` (to be written)."""


def register(sub) -> None:
    pass
