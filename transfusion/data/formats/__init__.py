"""Adapters for real dataset formats on disk; importing this registers their kinds."""

from . import aptos, chexpert, folder, medmnist  # noqa: F401

__all__ = ["aptos", "chexpert", "folder", "medmnist"]
