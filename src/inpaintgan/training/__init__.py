"""The shared trainer: one loop for every method, driven by the method's phases.

Imports are lazy so that ``inpaintgan --help`` does not load torch."""

__all__ = ["TrainContext", "Trainer", "train"]


def __getattr__(name):
    if name in __all__:
        from inpaintgan.training import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'inpaintgan.training' has no attribute {name!r}")
