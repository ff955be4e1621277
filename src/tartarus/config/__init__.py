"""Typed experiment and dataset configs, and the registry that reads them from TOML."""

from .registry import Registry, experiment_from_dict, parse_override
from .schema import (CnnSection, DatasetEntry, DatasetSection, EvaluatingSection, Experiment,
                     PredictingSection, TrainingSection)

__all__ = ["Registry", "experiment_from_dict", "parse_override", "Experiment", "DatasetEntry",
           "DatasetSection", "TrainingSection", "CnnSection", "PredictingSection", "EvaluatingSection"]
