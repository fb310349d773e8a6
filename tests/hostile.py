"""Hostile space files: a valid document with values swapped for what a careless or
hostile user writes, keys dropped or invented, and its text cut, spliced or bombed.

Shared by the fuzz test (hypothesis drives the choices) and the benchmark (a seeded
``random.Random`` does): both call :func:`hostile_text` with a ``draw(options)`` that
picks one of ``options``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import yaml

from tests.helpers import space_doc

T = TypeVar("T")
Draw = Callable[[Sequence[T]], T]

# Every key a full space file may have (a value for each, valid), as dotted paths.
FULL: dict[str, Any] = space_doc(
    budget={
        "max_trials": 4,
        "max_parallel": 2,
        "max_failures": 3,
        "max_wall_seconds": 60.0,
        "max_billable_seconds": 100.0,
        "target": 0.1,
        "patience": 3,
    },
    sampler={"kind": "tpe", "seed": 7, "max_grid_points": 1000},
    pruner={"kind": "median", "n_startup_trials": 2},
    experiment={"name": "quad", "runs_per_experiment": 50},
    backend={"kind": "emulator", "region": "us-east-1"},
    emulator={"cold_start_seconds": 0.0, "spot_interruption_rate": 0.0, "seed": 1},
    storage_lease_seconds=60.0,
)
FULL["space"] |= {
    "n": {"type": "int", "low": 1, "high": 8, "step": 1},
    "opt": {"type": "categorical", "choices": ["adam", "sgd"]},
}
FULL["estimator"] |= {
    "instance_type": "ml.m5.large",
    "instance_count": 1,
    "volume_size": 30,
    "hyperparameters": {"epochs": 3},
    "environment": {"MODE": "fast"},
    "output_path": "s3://bucket/out",
    "use_spot_instances": False,
}


def _paths(node: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.append(path)
            out += _paths(value, path)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, f"{prefix}[{i}]")
    return out


PATHS = [p for p in _paths(FULL) if "[" not in p]

BOMB = "\n".join(
    ["b0: &b0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 9)}]" for i in range(1, 9)]
)

VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**40,
    2**70,
    -(2**70),
    0.5,
    -0.0,
    1e308,
    -1e308,
    float("inf"),
    float("-inf"),
    float("nan"),
    "",
    " ",
    "x" * 3000,
    "../../etc/passwd",
    "/etc/passwd",
    "/dev/zero",
    "s3://bucket/..",
    "s3://",
    "ml.m5.larg",
    "\x00",
    "é\u202e\ud7ff",
    "{{template}}",
    "$(rm -rf /)",
    [],
    [1, 2, 3],
    [[[[[]]]]],
    {},
    {"": "x"},
    {"a": {"b": {"c": None}}},
    list(range(300)),
    {f"k{i}": i for i in range(200)},
]


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if value is _DELETE:
        node.pop(last, None)
    else:
        node[last] = value


_DELETE = object()


def hostile_document(draw: Draw[Any]) -> dict[str, Any]:
    """A full valid document with one to three of its values swapped, dropped or joined
    by unknown keys."""
    doc = copy.deepcopy(FULL)
    for _ in range(draw([1, 1, 2, 3])):
        path = draw([*PATHS, "space.extra", "unknown", "estimator.bogus", "space.sagemaker_x"])
        _set(doc, path, draw([*VALUES, _DELETE, _DELETE]))
    return doc


def hostile_text(draw: Draw[Any]) -> bytes:
    """A hostile document, dumped, then perhaps cut, spliced or bombed as text."""
    text = yaml.safe_dump(hostile_document(draw), sort_keys=False, allow_unicode=True)
    data = text.encode("utf-8", errors="surrogatepass")
    mutation = draw(["none", "none", "cut", "splice", "bytes", "bomb", "deep", "alias", "tabs"])
    at = draw([0, 1, len(data) // 3, len(data) // 2, len(data) - 1])
    if mutation == "cut":
        return data[:at]
    if mutation == "splice":
        piece = draw([b": [", b"{", b"&a", b"*a", b"!!python/object:os.system", b"- -", b"\n  "])
        return data[:at] + piece + data[at:]
    if mutation == "bytes":
        return data[:at] + draw([b"\xff\xfe", b"\x00", b"\xc3", b"\xed\xa0\x80"]) + data[at:]
    if mutation == "bomb":
        return (BOMB + "\n").encode() + data.replace(b"name: quad", b"name: *b8", 1)
    if mutation == "deep":
        depth = draw([60, 1000, 20_000])
        return data.replace(b"name: quad", b"name: " + b"[" * depth + b"]" * depth, 1)
    if mutation == "alias":
        return data.replace(b"space:", b"space: &s", 1) + b"\nextra: *s\n"
    if mutation == "tabs":
        return data.replace(b"  ", b"\t", 3)
    return data
