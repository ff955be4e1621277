"""Datasets: the embedded dummy-data generator (and, later, importers for published layouts)."""

from .dummy import (CLASSES as DUMMY_CLASSES, DATASET as DUMMY, DummyPlan, DummyReport, dummy_exists,
                    generate_dummy, load_split, plan_dummy)

__all__ = ["DUMMY", "DUMMY_CLASSES", "DummyPlan", "DummyReport", "dummy_exists", "generate_dummy",
           "load_split", "plan_dummy"]
