"""Fuzzing the space-file loader: whatever a generated hostile file holds, loading it is
either a ConfigError or a config whose first request can be built (``--dry-run``), in
bounded memory; never another exception. ``tests/benchmarks/hostile_files.py`` runs
thousands through the CLI and prints the figures."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sweeper import config, session
from sweeper.errors import ConfigError
from tests.helpers import write_sweep
from tests.hostile import hostile_text

PEAK_BYTES = 64 * 1024 * 1024


@settings(
    max_examples=150,
    deadline=None,  # time is the benchmark's to measure; a hang meets pytest's timeout
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_hostile_file_is_a_config_error_or_a_runnable_config(
    data: st.DataObject, tmp_path: Path
) -> None:
    write_sweep(tmp_path)  # the code directory the documents point at

    def draw(options: Any) -> Any:
        return data.draw(st.sampled_from(list(options)))

    path = tmp_path / "space.yaml"
    path.write_bytes(hostile_text(draw))
    error = ""
    tracemalloc.start()
    try:
        session.dry_run(config.load(path))
    except ConfigError as exc:
        error = str(exc)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    event(f"refused: {error.split(': ')[1][:30]}" if error else "accepted")
    assert not error or error.startswith(str(path)), error
    assert len(error) < 1000 and "\n" not in error, error[:2000]
    assert peak < PEAK_BYTES
