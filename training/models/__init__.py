"""Training's records: datasets (datasets.py), runs and registered models (runs.py)."""

from .datasets import Dataset
from .runs import ModelVersion, TrainingRun

__all__ = ["Dataset", "TrainingRun", "ModelVersion"]
