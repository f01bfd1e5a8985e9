"""The shared trainer: one loop for every method, driven by the method's phases."""

from inpaintgan.training.trainer import TrainContext, Trainer, train

__all__ = ["TrainContext", "Trainer", "train"]
