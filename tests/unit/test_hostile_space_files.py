"""Hostile space files: each is one clean error naming its key path, exit 2, no traceback,
no hang and no memory blow-up (the worst cases of issue 15, with their exact messages)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sweeper.cli import main
from tests.helpers import space_doc, write_sweep

ALIAS_BOMB = "\n".join(
    ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
)


def _refused(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``sweep.py path --dry-run`` in-process; the one line it printed on stderr."""
    assert main([str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err[:2000]
    assert len(err) < 600, err[:2000]
    return err.strip()


def _doc(tmp_path: Path, text: str) -> Path:
    write_sweep(tmp_path)  # the code directory a space file points at
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_an_alias_bomb_in_the_name_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _doc(tmp_path, ALIAS_BOMB + "\nname: *a8\n")
    err = _refused(path, capsys)
    assert err == (
        f"error: {path}: expands to more than 100,000 values (through YAML aliases?);"
        " not a space file"
    )


def test_aliases_within_bounds_are_fine(tmp_path: Path) -> None:
    doc = space_doc()
    text = write_sweep(tmp_path, doc).read_text()
    shared = "defs: &loss [{name: loss, regex: 'loss=([0-9.eE+-]+)'}]\n"
    text = text.replace("metric_definitions:", "metric_definitions: *loss\n  unused:")
    path = tmp_path / "aliased.yaml"
    path.write_text(shared + text.replace("  unused:\n", "  unused_:\n"))
    # The alias resolves; the only error is the unknown keys this test leaves behind.
    assert main([str(path), "--dry-run"]) == 2


def test_dev_zero_is_not_a_space_file(capsys: pytest.CaptureFixture[str]) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    assert _refused(Path("/dev/zero"), capsys) == "error: /dev/zero: not a regular file"


def test_a_huge_file_is_refused_unread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _doc(tmp_path, "name: quad\n" + "# padding\n" * 20_000)
    assert _refused(path, capsys) == f"error: {path}: larger than 128 KiB; not a space file"


def test_bytes_that_are_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "space.yaml"
    path.write_bytes(b"name: quad\nobjective: \xff\xfe\n")
    assert _refused(path, capsys) == (f"error: {path}:2: not UTF-8 text (byte 0xff at offset 22)")


def test_deep_nesting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _doc(tmp_path, "name: " + "[" * 5000 + "]" * 5000 + "\n")
    err = _refused(path, capsys)
    assert err.startswith(f"error: {path}") and "nest" in err, err


def _dump(tmp_path: Path, doc: dict[str, Any]) -> Path:
    return write_sweep(tmp_path, doc)


def _set(doc: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    *parents, last = dotted.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return doc


CASES = [
    (
        "space.x.low",
        -float("inf"),
        "space.x.low: expected a finite number, got -inf",
    ),
    ("space.x.high", float("nan"), "space.x.high: expected a finite number, got nan"),
    (
        "space.x",
        {"type": "float", "low": -1e308, "high": 1e308},
        "space.x: high - low must be a finite number (1e+308 - -1e+308)",
    ),
    (
        "sampler.seed",
        2**40,
        "sampler.seed: must be within 0..4294967295 (numpy's seeds), got 1099511627776",
    ),
    ("budget.target", float("inf"), "budget.target: expected a finite number, got inf"),
    (
        "emulator.spot_interruption_rate",
        float("nan"),
        "emulator.spot_interruption_rate: expected a finite number, got nan",
    ),
    (
        "estimator.environment",
        {"": "x"},
        "estimator.environment.'': not a variable name (letters, digits and '_', not"
        " starting with a digit, at most 512)",
    ),
    (
        "estimator.instance_type",
        "",
        "estimator.instance_type: '' is not a SageMaker training instance type",
    ),
    (
        "estimator.instance_type",
        "ml.m5.larg",
        "estimator.instance_type: 'ml.m5.larg' is not a SageMaker training instance type"
        " (did you mean 'ml.m5.large'?)",
    ),
    (
        "estimator.entry_point",
        "/etc/passwd",
        "estimator.entry_point: '/etc/passwd' is outside source_dir",
    ),
    (
        "estimator.source_dir",
        "src\x00",
        "estimator.source_dir: 'src\\x00' is not a usable path (embedded null byte)",
    ),
    (
        "estimator.source_dir",
        "x" * 3000,
        "estimator.source_dir: 'xxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxxxxxxxxxxxx' is"
        " not a usable path (File name too long)",
    ),
    (
        "estimator.output_path",
        "s3://bucket/..",
        "estimator.output_path: 's3://bucket/..' has an empty, '.' or '..' segment; objects"
        " under it could not be written as files",
    ),
    (
        "space",
        {f"p{i}": {"type": "float", "low": 0, "high": 1} for i in range(1000)},
        "space: 1000 parameters and 0 static hyperparameters make 1005 hyperparameters with"
        " the training toolkit's 5; SageMaker takes at most 100 per job",
    ),
    (
        "space",
        {f"p{i}": {"type": "int", "values": list(range(10))} for i in range(12)},
        "space: the grid has 1,000,000,000,000 points (10 x 10 x 10 x 10 x 10 x 10 x 10 x 10"
        " x ...), more than sampler.max_grid_points (100,000); list fewer values, or raise"
        " sampler.max_grid_points (the grid is built whole, in memory)",
    ),
    (
        "space.x",
        {"type": "categorical", "choices": ["a" * 3000]},
        "space.x.choices[0]: 'aaaaaaaaaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaaaaaaaaaaaaaaaaaa' is"
        " longer than SageMaker takes (2500 characters, JSON-encoded)",
    ),
    (
        "space.sagemaker_program",
        {"type": "float", "low": 0, "high": 1},
        "space.sagemaker_program: names starting with sagemaker_ are the training toolkit's",
    ),
]


@pytest.mark.parametrize(("key", "value", "message"), CASES, ids=[c[2][:40] for c in CASES])
def test_a_value_sagemaker_or_optuna_would_refuse_is_refused_up_front(
    key: str, value: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = space_doc()
    if "grid has" in message:
        doc["sampler"] = {"kind": "grid"}
    path = _dump(tmp_path, _set(doc, key, value))
    err = _refused(path, capsys)
    assert err.startswith(f"error: {path}: {message}"), err


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("name", "name: 'xxxxxxxx"),  # the case the fuzz test found
        ("objective.metric", "objective.metric: 'xxxxxxxx"),
        ("estimator.entry_point", "estimator.entry_point: 'xxxxxxxx"),
        ("estimator.source_dir", "estimator.source_dir: directory '"),
        ("tracking.mlflow.tracking_uri", "tracking.mlflow.tracking_uri: unknown scheme in 'x"),
    ],
)
def test_a_long_value_is_quoted_cut_short(
    key: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message quotes a bad value, never all 2 000 characters of it."""
    value = {
        "tracking.mlflow.tracking_uri": "x" * 1990 + "://y",
        "estimator.source_dir": "d/" * 700,
    }
    value = value.get(key, "x" * 2000)
    err = _refused(_dump(tmp_path, _set(space_doc(), key, value)), capsys)  # < 600 chars
    assert message in err, err
