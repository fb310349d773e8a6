"""CloudWatch Logs for the emulator's jobs: the store and the three read operations.

Log group ``/aws/sagemaker/TrainingJobs``; one stream per run of a job's container,
``<job>/algo-1-<epoch seconds>`` (a spot restart opens a new one), holding the
container's stdout and stderr lines as they are written, so logs can be read while a
job runs. Each stream is also appended to ``<root>/logs/<job>/<stream>.jsonl``, which
is how logs survive an emulator restart.

Choices where AWS does not document the behaviour: tokens are ``f/<index>`` and
``b/<index>`` (GetLogEvents returns the token it was given once nothing newer exists,
as AWS does); a FilterLogEvents pattern is a list of terms (``"quoted phrases"``
allowed) that must all occur in the message, case-sensitively.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper.emulator.errors import AwsError

GROUP = "/aws/sagemaker/TrainingJobs"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Stream:
    name: str
    created: int
    events: list[tuple[int, str, int]] = field(default_factory=list)  # (time, message, ingested)
    path: Path | None = None

    def describe(self, arn_prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "logStreamName": self.name,
            "creationTime": self.created,
            "arn": f"{arn_prefix}:log-stream:{self.name}",
            "storedBytes": 0,
        }
        if self.events:
            out |= {
                "firstEventTimestamp": self.events[0][0],
                "lastEventTimestamp": self.events[-1][0],
                "lastIngestionTime": self.events[-1][2],
            }
        return out


class LogStore:
    """Streams by name. Mutated only on the emulator's event loop."""

    def __init__(self, root: Path, region: str, account: str) -> None:
        self._root = root / "logs"
        self._arn = f"arn:aws:logs:{region}:{account}:log-group:{GROUP}"
        self.streams: dict[str, Stream] = {}

    def load(self) -> None:
        """Read back the streams an earlier emulator wrote under the same root."""
        for path in sorted(self._root.glob("*/*.jsonl")):
            name = f"{path.parent.name}/{path.stem}"
            stream = Stream(name, int(path.stat().st_ctime * 1000), path=path)
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    stamp, message = json.loads(line)
                except (ValueError, TypeError):  # a line cut short by a crash
                    continue
                stream.events.append((stamp, message, stamp))
            self.streams[name] = stream

    def open(self, job: str) -> Stream:
        """A new stream for a run of ``job``'s container."""
        epoch = int(time.time())
        while f"{job}/algo-1-{epoch}" in self.streams:
            epoch += 1
        name = f"{job}/algo-1-{epoch}"
        path = self._root / job / f"algo-1-{epoch}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = Stream(name, _now_ms(), path=path)
        self.streams[name] = stream
        return stream

    def append(self, stream: Stream, message: str) -> None:
        stamp = _now_ms()
        stream.events.append((stamp, message, stamp))
        if stream.path is not None:
            with stream.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps([stamp, message]) + "\n")

    def text(self, job: str) -> str:
        """Every line ``job`` wrote, across its streams (for tests and reports)."""
        return "".join(
            m + "\n"
            for n, s in sorted(self.streams.items())
            if n.startswith(f"{job}/")
            for _, m, _ in s.events
        )

    # --- the API ----------------------------------------------------------------------

    def _group(self, params: dict[str, Any]) -> None:
        group = params.get("logGroupName") or params.get("logGroupIdentifier")
        if group != GROUP or not self.streams:
            raise AwsError("ResourceNotFoundException", "The specified log group does not exist.")

    def describe_log_streams(self, params: dict[str, Any]) -> dict[str, Any]:
        self._group(params)
        prefix = params.get("logStreamNamePrefix", "")
        order = params.get("orderBy", "LogStreamName")
        if prefix and order == "LastEventTime":
            raise AwsError(
                "InvalidParameterException",
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            )
        streams = [s for n, s in self.streams.items() if n.startswith(prefix)]
        if order == "LastEventTime":
            streams.sort(key=lambda s: s.events[-1][0] if s.events else 0)
        else:
            streams.sort(key=lambda s: s.name)
        if params.get("descending"):
            streams.reverse()
        start = int(params.get("nextToken") or 0)
        limit = int(params.get("limit", 50))
        out: dict[str, Any] = {
            "logStreams": [s.describe(self._arn) for s in streams[start : start + limit]]
        }
        if start + limit < len(streams):
            out["nextToken"] = str(start + limit)
        return out

    def get_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        self._group(params)
        stream = self.streams.get(params["logStreamName"])
        if stream is None:
            raise AwsError("ResourceNotFoundException", "The specified log stream does not exist.")
        lo, hi = params.get("startTime", 0), params.get("endTime", 2**63)
        indices = [i for i, (t, _, _) in enumerate(stream.events) if lo <= t < hi]
        limit = int(params.get("limit", 10000))
        token = params.get("nextToken")
        if token and token.startswith("f/"):
            first = int(token[2:])
            chosen = [i for i in indices if i >= first][:limit]
        elif token and token.startswith("b/"):
            chosen = [i for i in indices if i < int(token[2:])][-limit:]
        elif params.get("startFromHead"):
            chosen = indices[:limit]
        else:
            chosen = indices[-limit:]
        end = chosen[-1] + 1 if chosen else (int(token[2:]) if token else len(stream.events))
        begin = chosen[0] if chosen else end
        return {
            "events": [
                {
                    "timestamp": stream.events[i][0],
                    "message": stream.events[i][1],
                    "ingestionTime": stream.events[i][2],
                }
                for i in chosen
            ],
            "nextForwardToken": f"f/{end}",
            "nextBackwardToken": f"b/{begin}",
        }

    def filter_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        self._group(params)
        names = params.get("logStreamNames")
        prefix = params.get("logStreamNamePrefix", "")
        streams = [
            s
            for n, s in sorted(self.streams.items())
            if (names is None or n in names) and n.startswith(prefix)
        ]
        terms = shlex.split(params.get("filterPattern", "") or "")
        lo, hi = params.get("startTime", 0), params.get("endTime", 2**63)
        found: list[dict[str, Any]] = [
            {
                "logStreamName": s.name,
                "timestamp": t,
                "message": m,
                "ingestionTime": ing,
                "eventId": f"{s.name}#{i}",
            }
            for s in streams
            for i, (t, m, ing) in enumerate(s.events)
            if lo <= t < hi and all(term in m for term in terms)
        ]
        found.sort(key=lambda e: int(e["timestamp"]))
        start, limit = int(params.get("nextToken") or 0), int(params.get("limit", 10000))
        out: dict[str, Any] = {
            "events": found[start : start + limit],
            "searchedLogStreams": [
                {"logStreamName": s.name, "searchedCompletely": True} for s in streams
            ],
        }
        if start + limit < len(found):
            out["nextToken"] = str(start + limit)
        return out
