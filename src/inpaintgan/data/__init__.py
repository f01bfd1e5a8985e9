"""Datasets: image sources (folder, CIFAR-10, Fashion-MNIST) and the training wrapper that crops,
flips and draws a mask for every sample, deterministically from (seed, epoch, index)."""

from inpaintgan.data.folder import ImageFolder, ImageSource, list_images
from inpaintgan.data.inpainting import InpaintingDataset, build_datasets, split_indices

__all__ = ["ImageFolder", "ImageSource", "InpaintingDataset", "build_datasets", "list_images", "split_indices"]
