"""Space-file validation: every bad input is one clear line on stderr and exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from sweeper import config
from sweeper.cli import main
from sweeper.config import ParamType, SamplerKind
from sweeper.study import make_pruner
from tests.helpers import free_port, space_doc, write_sweep


def _with(path: str, value: Any) -> dict[str, Any]:
    """space_doc() with the dotted ``path`` set to ``value`` (or removed if value is ...)."""
    doc = space_doc()
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return doc


BAD_INPUTS = [
    (
        "pruner option of another pruner",
        {**space_doc(), "pruner": {"kind": "median", "reduction_factor": 3}},
        "pruner.reduction_factor: unknown key",
    ),
    (
        "pruner option out of range",
        {**space_doc(), "pruner": {"kind": "hyperband", "reduction_factor": 1}},
        "pruner.reduction_factor: must be >= 2, got 1",
    ),
    (
        "pruner option required",
        {**space_doc(), "pruner": {"kind": "percentile"}},
        "pruner.percentile: required for pruner.kind percentile",
    ),
    (
        "asha promotion without its resource",
        {**space_doc(), "pruner": {"kind": "asha", "max_resource": 9}},
        "pruner.resource: required for pruner.kind asha, mode: promotion",
    ),
    (
        "asha resource also searched",
        {**space_doc(), "pruner": {"kind": "asha", "resource": "x", "max_resource": 9}},
        "pruner.resource: x is set by each rung's promotion",
    ),
    (
        "asha max_resource below min_resource",
        {
            **space_doc(),
            "pruner": {"kind": "asha", "resource": "epochs", "min_resource": 3, "max_resource": 2},
        },
        "pruner.max_resource: must be >= min_resource (3), got 2",
    ),
    (
        "asha stopping given a resource",
        {**space_doc(), "pruner": {"kind": "asha", "mode": "stopping", "resource": "epochs"}},
        "pruner.resource: only with pruner.mode: promotion",
    ),
    (
        "asha of an unknown mode",
        {**space_doc(), "pruner": {"kind": "asha", "mode": "pbt"}},
        "pruner.mode: 'pbt' is not one of promotion, stopping",
    ),
    (
        "max_cost without a price",
        _with("budget.max_cost", 10),
        "budget.max_cost: needs estimator.instance_price_per_hour",
    ),
    (
        "spot_fallback without spot",
        _with("estimator.spot_fallback", "on_demand"),
        "estimator.spot_fallback: only applies with use_spot_instances: true",
    ),
    ("missing required key", _with("objective", ...), "objective: required key is missing"),
    (
        "missing nested key",
        _with("objective.metric", ...),
        "objective.metric: required key is missing",
    ),
    (
        "unknown key, closest suggested",
        _with("budget.max_paralel", 3),
        "budget.max_paralel: unknown key (did you mean 'max_parallel'?)",
    ),
    (
        "unknown top-level key",
        {**space_doc(), "sampeler": {}},
        "sampeler: unknown key (did you mean 'sampler'?)",
    ),
    (
        "wrong type",
        _with("budget.max_trials", "ten"),
        "budget.max_trials: expected an integer, got string 'ten'",
    ),
    (
        "low >= high",
        _with("space.x", {"type": "float", "low": 1.0, "high": 1.0}),
        "space.x.low: must be < high (1.0 >= 1.0)",
    ),
    (
        "log with low <= 0",
        _with("space.x", {"type": "float", "low": 0.0, "high": 1.0, "log": True}),
        "space.x.low: must be > 0 with log: true, got 0.0",
    ),
    (
        "empty choices",
        _with("space.x", {"type": "categorical", "choices": []}),
        "space.x.choices: must list at least one choice",
    ),
    (
        "objective metric not defined",
        _with("objective.metric", "accuracy"),
        "objective.metric: 'accuracy' is not among estimator.metric_definitions (loss)",
    ),
    (
        "max_parallel < 1",
        _with("budget.max_parallel", 0),
        "budget.max_parallel: must be >= 1, got 0",
    ),
    (
        "source_dir missing",
        _with("estimator.source_dir", "nowhere"),
        "estimator.source_dir: directory",
    ),
    (
        "entry_point missing",
        _with("estimator.entry_point", "nope.py"),
        "estimator.entry_point: 'nope.py' does not exist in",
    ),
    (
        "bad parameter type",
        _with("space.x", {"type": "double", "low": 0, "high": 1}),
        "space.x.type: 'double' is not one of float, int, categorical",
    ),
    (
        "bad direction",
        _with("objective.direction", "up"),
        "objective.direction: 'up' is not one of maximize, minimize",
    ),
    (
        "grid without values",
        _with("sampler", {"kind": "grid"}),
        "space.x.values: sampler.kind grid needs a list",
    ),
]


@pytest.mark.parametrize(("what", "doc", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(
    what: str, doc: dict[str, Any], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_sweep(tmp_path, doc)
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no traceback
    assert err.startswith(f"error: {path}: ")
    assert message in err


def test_yaml_syntax_error_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "space.yaml"
    path.write_text("name: quad\nobjective:\n  metric: loss\n  direction: [minimize\nbudget: {}\n")
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{path}:5:" in err
    assert "invalid YAML" in err


def test_missing_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "absent.yaml")]) == 2
    assert "cannot read space file" in capsys.readouterr().err


def test_spot_and_warm_pool_together_are_refused(tmp_path: Path) -> None:
    doc = space_doc()
    doc["estimator"] |= {"use_spot_instances": True, "keep_alive_period_in_seconds": 60}
    with pytest.raises(
        config.ConfigError,
        match="AWS does not allow warm pools with managed spot in one job; choose one",
    ):
        config.load(write_sweep(tmp_path, doc))


def test_max_wait_below_max_run_is_refused(tmp_path: Path) -> None:
    doc = space_doc()
    doc["estimator"] |= {"use_spot_instances": True, "max_wait": 60, "max_run": 120}
    with pytest.raises(config.ConfigError, match=r"estimator.max_wait: must be >= max_run \(120\)"):
        config.load(write_sweep(tmp_path, doc))


def test_valid_file_becomes_frozen_typed_config(tmp_path: Path) -> None:
    doc = space_doc(
        sampler={"kind": "random", "seed": 3},
        space={
            "x": {"type": "float", "low": 0.001, "high": 1, "log": True},
            "n": {"type": "int", "low": 8, "high": 128, "step": 8},
            "opt": {"type": "categorical", "choices": ["adam", "sgd"]},
        },
    )
    cfg = config.load(write_sweep(tmp_path, doc))
    assert cfg.name == "quad"
    assert cfg.sampler.kind == SamplerKind.RANDOM
    assert [p.type for p in cfg.space] == [ParamType.FLOAT, ParamType.INT, ParamType.CATEGORICAL]
    x = cfg.space[0]
    assert (x.low, x.high, x.log) == (0.001, 1.0, True)
    assert cfg.estimator.source_dir == (tmp_path / "src").resolve()
    assert cfg.budget.max_parallel == 2
    assert cfg.storage_url == f"sqlite:///{tmp_path.resolve()}/.sweeps/quad.db"
    with pytest.raises(AttributeError):
        cfg.name = "other"  # type: ignore[misc]


def test_quickstart_and_sagemaker_examples_are_valid() -> None:
    root = Path(__file__).parents[2] / "search_spaces"
    for name in ("quickstart.yaml", "sagemaker.yaml", "pruning.yaml"):
        cfg = config.load(root / name)
        assert cfg.objective.metric in [m.name for m in cfg.estimator.metric_definitions]


def test_a_pruner_section_gives_optuna_s_pruner_with_its_options(tmp_path: Path) -> None:
    doc = space_doc(pruner={"kind": "hyperband", "min_resource": 2, "max_resource": "auto"})
    cfg = config.load(write_sweep(tmp_path, doc))
    assert cfg.pruner.kind == config.PrunerKind.HYPERBAND
    pruner = make_pruner(cfg)
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert (pruner._min_resource, pruner._max_resource) == (2, "auto")
    stopping = space_doc(pruner={"kind": "asha", "mode": "stopping", "reduction_factor": 2})
    sha = make_pruner(config.load(write_sweep(tmp_path, stopping)))
    assert isinstance(sha, optuna.pruners.SuccessiveHalvingPruner)  # ASHA's stopping form
    assert (sha._min_resource, sha._reduction_factor) == (1, 2)
    promotion = space_doc(pruner={"kind": "asha", "resource": "epochs", "max_resource": 9})
    promoted = config.load(write_sweep(tmp_path, promotion))
    assert isinstance(make_pruner(promoted), optuna.pruners.NopPruner)  # it pauses instead
    assert promoted.pruner.options["reduction_factor"] == 3
    patient = space_doc(pruner={"kind": "patient", "patience": 3, "wrapped": "median"})
    made = make_pruner(config.load(write_sweep(tmp_path, patient)))
    assert isinstance(made, optuna.pruners.PatientPruner)
    assert isinstance(made._wrapped_pruner, optuna.pruners.MedianPruner)
    assert isinstance(make_pruner(config.load(write_sweep(tmp_path))), optuna.pruners.NopPruner)


def test_an_emulator_endpoint_where_none_answers_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The standalone emulator's S3 endpoint is asked for while the sweep imports; a port
    where nothing listens is the space file's error, said once."""
    url = f"http://127.0.0.1:{free_port()}"
    path = write_sweep(tmp_path, space_doc(backend={"kind": "emulator", "endpoint_url": url}))
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"backend.endpoint_url: no emulator answers at {url}" in err
    assert "python sweep.py emulator" in err
