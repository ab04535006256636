"""User-facing errors: each carries one actionable line for the CLI and the app."""
from __future__ import annotations


class SiameseError(ValueError):
    """Base class for every error a user can cause (bad data, bad image, bad weights)."""


class DataError(SiameseError):
    """A dataset spec, archive or folder that cannot be loaded."""


class ImageError(SiameseError):
    """An image that cannot be read, or one with nothing drawn on it."""


class WeightsError(SiameseError):
    """Missing, corrupt or mismatching model files."""
