"""Data: toy 2-D sets, user tables, image sets, dequantization and validation."""
from . import images, toy  # noqa: F401  (register digits, mnist, ...; moons, circles, 8gaussians, checkerboard)
from .dataset import (
    RECORDED_OPTIONS,
    SPLITS,
    DataError,
    Dataset,
    available_datasets,
    datasets_taking,
    load_dataset,
    register_dataset,
)
from .dequantize import dequantize
from .toy import toy_log_density

__all__ = [
    "RECORDED_OPTIONS",
    "SPLITS",
    "DataError",
    "Dataset",
    "available_datasets",
    "datasets_taking",
    "dequantize",
    "load_dataset",
    "register_dataset",
    "toy_log_density",
]
