"""Datasets: the embedded dummy-data generator (``dummy``) and the MagnaTagATune import (``magna``)."""

from .dummy import (CLASSES as DUMMY_CLASSES, DATASET as DUMMY, DummyPlan, DummyReport, dummy_exists,
                    generate_dummy, plan_dummy)

__all__ = ["DUMMY", "DUMMY_CLASSES", "DummyPlan", "DummyReport", "dummy_exists", "generate_dummy", "plan_dummy"]
