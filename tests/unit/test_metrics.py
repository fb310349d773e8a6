"""Metric values from log lines, as SageMaker reads them, with steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper import config
from sweeper.config import MetricDefinition
from sweeper.metrics import MetricPoint, MetricReader
from tests.helpers import space_doc, write_sweep

ACC = MetricDefinition("acc", r"val_acc=([0-9.]+)")
STEPPED = MetricDefinition("loss", r"loss=([0-9.]+) epoch=(?P<step>\d+)")


def test_steps_count_each_job_s_values_of_each_metric() -> None:
    reader = MetricReader([ACC])
    assert reader.feed("a", ["val_acc=0.5", "noise", "val_acc=0.7"]) == [
        MetricPoint("acc", 0, 0.5),
        MetricPoint("acc", 1, 0.7),
    ]
    assert reader.feed("b", ["val_acc=0.1"]) == [MetricPoint("acc", 0, 0.1)]  # its own count
    assert reader.feed("a", ["val_acc=0.9"]) == [MetricPoint("acc", 2, 0.9)]  # goes on
    reader.forget("a")
    assert reader.feed("a", ["val_acc=0.9"]) == [MetricPoint("acc", 0, 0.9)]


def test_a_named_step_group_gives_the_step() -> None:
    reader = MetricReader([STEPPED, ACC])
    assert reader.feed("a", ["loss=0.25 epoch=3 val_acc=0.8", "loss=1 epoch=x"]) == [
        MetricPoint("loss", 3, 0.25),
        MetricPoint("acc", 0, 0.8),
    ]


def test_a_value_that_is_not_a_number_is_skipped() -> None:
    assert MetricReader([MetricDefinition("m", r"m=(\S+)")]).feed("a", ["m=nope", "m=2"]) == [
        MetricPoint("m", 0, 2.0)
    ]


def test_a_step_group_before_the_value_is_refused(tmp_path: Path) -> None:
    doc = space_doc()
    regex = r"step=(?P<step>\d+) loss=([0-9.]+)"
    doc["estimator"]["metric_definitions"] = [{"name": "loss", "regex": regex}]
    with pytest.raises(config.ConfigError, match="the value must be the first capture group"):
        config.load(write_sweep(tmp_path, doc))
