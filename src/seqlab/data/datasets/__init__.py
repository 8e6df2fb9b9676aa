"""Registered real datasets (offline, with data cards): ``seqlab data list``.

Importing this package registers every dataset module below.
"""

from seqlab.data.datasets import anomaly, series, tagging, text  # noqa: F401  (registers the datasets)
from seqlab.data.datasets.base import BUILTIN_DIR, DATASETS, DataCard, Dataset, load_dataset, read_builtin

__all__ = ["BUILTIN_DIR", "DATASETS", "DataCard", "Dataset", "load_dataset", "read_builtin"]
