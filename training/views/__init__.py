"""Training's pages, one module per part: datasets (datasets.py), runs (runs.py), models (models.py)."""

from .datasets import dataset_columns, dataset_detail, dataset_list, dataset_new, dataset_source, dataset_table
from .runs import run_new

__all__ = ["dataset_list", "dataset_new", "dataset_columns", "dataset_detail", "dataset_table", "dataset_source",
           "run_new"]
