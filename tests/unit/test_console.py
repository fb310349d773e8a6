"""Live progress: a redrawn block on a terminal, plain throttled lines elsewhere."""

from __future__ import annotations

import io
from pathlib import Path

from sweeper.clock import VirtualClock
from sweeper.config import Goal, Objective
from sweeper.console import ConsoleReporter
from sweeper.types import Progress
from tests.unit.test_scheduler import FakeBackend, _run


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


ACC = Goal((Objective("acc", "maximize"),))
PROGRESS = Progress(
    done=3,
    failed=1,
    running=2,
    limit=12,
    best=0.97,
    elapsed=42.0,
    eta=30.0,
    jobs=((4, "quad-4-1", "Training"), (5, "quad-5-1", "Downloading")),
)


def test_on_a_terminal_the_status_block_is_redrawn_under_the_events() -> None:
    out = Terminal()
    console = ConsoleReporter(VirtualClock(), ACC, out, tags="spot")
    console.progress(PROGRESS)
    console.finished(4, "quad-4-1", (0.98,), 10.0)
    text = out.getvalue()
    block = (
        "-- 3/12 done, 2 running, 1 failed; best acc=0.97; 42 s elapsed, about 30 s left\n"
        "  trial 4    quad-4-1  Training (spot)\n  trial 5    quad-5-1  Downloading (spot)\n"
    )
    assert text.startswith(block)
    # The event line is printed after erasing the 3-line block, which is then redrawn.
    assert (
        text
        == block
        + "\x1b[3F\x1b[J"
        + "[    0.0s] trial 4   finished  acc=0.98 (job 10.0 s)\n"
        + block
    )


def test_in_a_log_progress_is_a_plain_line_at_most_every_30_seconds() -> None:
    out = io.StringIO()
    console = ConsoleReporter(VirtualClock(), ACC, out)
    for elapsed in (1.0, 10.0, 31.5, 40.0, 62.0):
        console.progress(Progress(1, 0, 1, 4, 0.5, elapsed, None))
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()
    assert len(lines) == 3
    for line, elapsed in zip(
        lines, ("; 1 s elapsed", "; 32 s elapsed", "; 62 s elapsed"), strict=True
    ):
        assert "progress: 1/4 done, 1 running, 0 failed; best acc=0.5" in line
        assert line.endswith(elapsed)


async def test_the_scheduler_reports_progress_with_the_jobs_in_flight(tmp_path: Path) -> None:
    clock = VirtualClock()
    _, study, events = await _run(tmp_path, FakeBackend(clock), clock, max_trials=6, max_parallel=2)
    assert events.progresses
    assert max(p.running for p in events.progresses) == 2
    assert events.progresses[-1].done == 6
    assert all(len(p.jobs) == p.running for p in events.progresses)
    assert any(p.eta is not None for p in events.progresses)
    study.close()
