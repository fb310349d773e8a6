"""The emulator's metric series: points survive a torn line and a disk that refuses a
batch, and CloudWatch's statistics are computed as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.emulator.cloudwatch import statistic
from sweeper.emulator.metric_series import BATCH, MetricSeries


def test_points_are_batched_to_disk_and_read_back_in_time_order(tmp_path: Path) -> None:
    series = MetricSeries(tmp_path)
    for i in range(BATCH + 2):
        series.add("job", "loss", float(i), 1000.0 - i)  # written at BATCH, 2 pending
    series.add("job", "loss", float("nan"), 5.0)  # not a point: CloudWatch keeps none
    written = (tmp_path / "metric-series" / "job.jsonl").read_text().splitlines()
    points = series.points("job")
    assert len(written) == BATCH
    assert [p.value for p in points] == [float(i) for i in reversed(range(BATCH + 2))]
    assert MetricSeries(tmp_path).points("job") == points  # flushed by the read


def test_a_torn_line_is_skipped(tmp_path: Path) -> None:
    series = MetricSeries(tmp_path)
    series.add("job", "loss", 1.0, 10.0)
    series.flush()
    with (tmp_path / "metric-series" / "job.jsonl").open("a") as f:
        f.write('[11.0, "loss", 0.')  # a crash mid-write
    assert [p.value for p in MetricSeries(tmp_path).points("job")] == [1.0]


def test_a_batch_the_disk_refuses_stays_readable_until_it_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "metric-series").write_text("a file where the directory goes")
    series = MetricSeries(tmp_path)
    series.add("job", "loss", 1.0, 10.0)
    series.flush()
    series.add("job", "loss", 2.0, 11.0)
    series.flush()
    assert [p.value for p in series.points("job")] == [1.0, 2.0]
    assert capsys.readouterr().err.count("cannot write metric series") == 1
    (tmp_path / "metric-series").unlink()
    series.flush()
    assert [p.value for p in MetricSeries(tmp_path).points("job")] == [1.0, 2.0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SampleCount", 4.0),
        ("Sum", 10.0),
        ("Average", 2.5),
        ("Minimum", 1.0),
        ("Maximum", 4.0),
        ("p50", 2.0),
        ("p75", 3.0),
        ("p99", 4.0),
        ("p100", 4.0),
    ],
)
def test_statistics(name: str, expected: float) -> None:
    assert statistic(name, [3.0, 1.0, 4.0, 2.0]) == expected
