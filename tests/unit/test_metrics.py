"""Metric values from log lines, as SageMaker reads them, with steps."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sweeper import config
from sweeper.config import MetricDefinition
from sweeper.metrics import MetricPoint, MetricReader
from tests.helpers import space_doc, write_sweep

ACC = MetricDefinition("acc", r"val_acc=([0-9.]+)")
STEPPED = MetricDefinition("loss", r"loss=([0-9.]+) epoch=(?P<step>\d+)")


def _feed(reader: MetricReader, job: str, lines: list[str]) -> list[MetricPoint]:
    return [point for _, point in asyncio.run(reader.scan(job, lines))]


def test_steps_count_each_job_s_values_of_each_metric() -> None:
    reader = MetricReader([ACC])
    assert _feed(reader, "a", ["val_acc=0.5", "noise", "val_acc=0.7"]) == [
        MetricPoint("acc", 0, 0.5),
        MetricPoint("acc", 1, 0.7),
    ]
    assert _feed(reader, "b", ["val_acc=0.1"]) == [MetricPoint("acc", 0, 0.1)]  # its own count
    assert _feed(reader, "a", ["val_acc=0.9"]) == [MetricPoint("acc", 2, 0.9)]  # goes on
    reader.forget("a")
    assert _feed(reader, "a", ["val_acc=0.9"]) == [MetricPoint("acc", 0, 0.9)]


def test_a_named_step_group_gives_the_step() -> None:
    reader = MetricReader([STEPPED, ACC])
    assert _feed(reader, "a", ["loss=0.25 epoch=3 val_acc=0.8", "loss=1 epoch=x"]) == [
        MetricPoint("loss", 3, 0.25),
        MetricPoint("acc", 0, 0.8),
    ]


def test_a_value_that_is_not_a_number_is_skipped() -> None:
    assert _feed(MetricReader([MetricDefinition("m", r"m=(\S+)")]), "a", ["m=nope", "m=2"]) == [
        MetricPoint("m", 0, 2.0)
    ]


def test_a_step_group_before_the_value_is_refused(tmp_path: Path) -> None:
    doc = space_doc()
    regex = r"step=(?P<step>\d+) loss=([0-9.]+)"
    doc["estimator"]["metric_definitions"] = [{"name": "loss", "regex": regex}]
    with pytest.raises(config.ConfigError, match="the value must be the first capture group"):
        config.load(write_sweep(tmp_path, doc))


def test_a_regex_past_its_time_bound_is_dropped_with_one_warning() -> None:
    """A catastrophic regex costs one bounded search, not the sweep: it is dropped (with
    a warning naming it) and the other definitions go on being read."""
    warnings: list[str] = []
    slow = MetricDefinition("slow", r"(.*){1,32000}[bc](\d)")
    reader = MetricReader([slow, ACC], warn=warnings.append)
    lines = ["a" * 40 + " val_acc=0.5", "a" * 40 + " val_acc=0.6"]
    assert _feed(reader, "a", lines) == [MetricPoint("acc", 0, 0.5), MetricPoint("acc", 1, 0.6)]
    assert len(warnings) == 1
    assert "metric_definitions 'slow' regex" in warnings[0]
    assert "catastrophic backtracking" in warnings[0]


async def test_scanning_never_blocks_the_event_loop() -> None:
    """While a slow regex searches (in a worker thread, the GIL released), the loop
    keeps turning."""
    reader = MetricReader([MetricDefinition("slow", r"(.*){1,32000}[bc](\d)")], warn=print)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    await reader.scan("a", ["a" * 40])
    ticker.cancel()
    assert ticks >= 3  # the loop ran on while the search took its time bound (0.25 s)
