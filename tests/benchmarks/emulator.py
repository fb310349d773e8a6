"""Emulator capacity: API latency with many concurrent jobs held, and memory.

    python tests/benchmarks/emulator.py [--jobs 200] [--describes 1000] [--searches 200]

Starts ``sweep.py emulator`` as its own process, creates JOBS training jobs whose
script sleeps (so all are held at once, in Training), then times DescribeTrainingJob
(random jobs) and Search (every InProgress job, a page of 100) through boto3, one call
at a time. Prints p50/p99 latency of each, how many jobs were held without error, and
the RSS of the emulator process (its job processes not included). Stops every job.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT))

from tests.helpers import boto3_client, job_request, standalone_emulator  # noqa: E402

SLEEPER = "import time\nprint('ready', flush=True)\ntime.sleep(600)\n"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.99 * (len(ordered) - 1))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--describes", type=int, default=1000)
    parser.add_argument("--searches", type=int, default=200)
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / "code"
        code.mkdir()
        (code / "sleeper.py").write_text(SLEEPER)
        with standalone_emulator(Path(tmp) / "state") as url:
            sm = boto3_client(url)
            names = [f"held-{i}" for i in range(a.jobs)]
            start = time.perf_counter()
            for name in names:
                request = job_request(name, code, StoppingCondition={"MaxRuntimeInSeconds": 3600})
                request["HyperParameters"]["sagemaker_program"] = json.dumps("sleeper.py")
                sm.create_training_job(**request)
            training = 0
            while training < a.jobs and time.perf_counter() - start < 300:
                pages = sm.get_paginator("list_training_jobs").paginate(StatusEquals="InProgress")
                training = sum(
                    s.get("SecondaryStatus") == "Training"
                    for p in pages
                    for s in p["TrainingJobSummaries"]
                )
                time.sleep(0.5)  # a benchmark's own pacing, not a test's wait
            ramp = time.perf_counter() - start
            rng, describes, searches = random.Random(0), [], []
            for _ in range(a.describes):
                t = time.perf_counter()
                sm.describe_training_job(TrainingJobName=rng.choice(names))
                describes.append(time.perf_counter() - t)
            expression = {
                "Filters": [
                    {"Name": "TrainingJobStatus", "Operator": "Equals", "Value": "InProgress"}
                ]
            }
            for _ in range(a.searches):
                t = time.perf_counter()
                found = sm.search(
                    Resource="TrainingJob", SearchExpression=expression, MaxResults=100
                )
                searches.append(time.perf_counter() - t)
            held = found["TotalHits"]["Value"]
            with urllib.request.urlopen(f"{url}/_emulator/stats") as response:
                stats = json.loads(response.read())
            rss = _rss_mb(stats["pid"])
            failed = len(
                sm.list_training_jobs(StatusEquals="Failed", MaxResults=100)["TrainingJobSummaries"]
            )
            for name in names:
                sm.stop_training_job(TrainingJobName=name)
    d50, d99 = _percentiles(describes)
    s50, s99 = _percentiles(searches)
    print(
        f"jobs held        {held} of {a.jobs} in Training at once ({failed} failed); ramp {ramp:.1f} s"
    )
    print(f"DescribeTrainingJob  p50 {d50:.1f} ms  p99 {d99:.1f} ms  ({a.describes} calls)")
    print(f"Search (100/page)    p50 {s50:.1f} ms  p99 {s99:.1f} ms  ({a.searches} calls)")
    print(f"emulator RSS     {rss:.0f} MB")


if __name__ == "__main__":
    main()
