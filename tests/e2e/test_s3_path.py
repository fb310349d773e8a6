"""The SageMaker path on the emulator: uploaded code, ``s3://`` channels, model artifacts.

Jobs get exactly what a real account's jobs get: ``sagemaker_submit_directory`` is the
sweep's ``sourcedir.tar.gz`` on S3, channels are S3 prefixes, and models land at
``<output_path>/<job>/output/model.tar.gz``, all through the emulator's S3 endpoint.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import yaml
from sklearn.datasets import load_digits

from tests.helpers import (
    ROOT,
    boto3_client,
    emulator_info,
    list_jobs,
    run_sweep,
    s3_client,
    s3_tar_names,
    space_doc,
    standalone_emulator,
    sweep_trials,
    write_sweep,
)

BUCKET = "sagemaker-us-east-1-123456789012"  # the SDK's default bucket, emulator account


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _quickstart(tmp_path: Path, url: str, trials: int) -> Path:
    doc = yaml.safe_load((ROOT / "search_spaces" / "quickstart.yaml").read_text())
    doc["budget"] = {"max_trials": trials, "max_parallel": 2}
    doc["estimator"]["source_dir"] = str(ROOT / "src")
    doc["estimator"]["hyperparameters"] = {"max_iter": 20, "epochs": 2}
    doc["estimator"]["inputs"] = {"train": "s3://datasets/digits/"}
    doc["backend"] = {"kind": "emulator", "endpoint_url": url}
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(doc, sort_keys=False))
    return space


def test_quickstart_runs_from_uploaded_code_and_s3_channels(tmp_path: Path) -> None:
    with standalone_emulator(tmp_path / "emulator") as url:
        s3 = s3_client(emulator_info(url)["s3_endpoint_url"])
        s3.create_bucket(Bucket="datasets")
        x, y = load_digits(return_X_y=True)
        rows = "\n".join(
            ",".join(f"{v:g}" for v in [*r, label]) for r, label in zip(x, y, strict=True)
        )
        s3.put_object(Bucket="datasets", Key="digits/train.csv", Body=rows.encode())

        first = run_sweep(str(_quickstart(tmp_path, url, 4)))
        assert first.returncode == 0, first.stdout + first.stderr
        assert re.search(r"code: uploading .*src \(\d+ files\) to s3://", first.stdout)
        code = _keys(s3, BUCKET, "digits-hgb/digits-hgb/source/")
        assert len(code) == 1 and code[0].endswith("/sourcedir.tar.gz")
        assert "train.py" in s3_tar_names(s3, f"s3://{BUCKET}/{code[0]}")
        uploaded = s3.head_object(Bucket=BUCKET, Key=code[0])["LastModified"]

        sm, logs = boto3_client(url), boto3_client(url, "logs")
        trials = sweep_trials(tmp_path / "space.yaml", "digits-hgb")
        for trial in trials:
            job = sm.describe_training_job(TrainingJobName=f"digits-hgb-{trial.number}-1")
            hps = job["HyperParameters"]
            assert json.loads(hps["sagemaker_submit_directory"]) == f"s3://{BUCKET}/{code[0]}"
            source = job["InputDataConfig"][0]["DataSource"]["S3DataSource"]
            assert (job["InputDataConfig"][0]["ChannelName"], source["S3Uri"]) == (
                "train",
                "s3://datasets/digits/",
            )
            stream = logs.describe_log_streams(
                logGroupName="/aws/sagemaker/TrainingJobs",
                logStreamNamePrefix=f"{job['TrainingJobName']}/",
            )["logStreams"][0]["logStreamName"]
            events = logs.get_log_events(
                logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream, startFromHead=True
            )["events"]
            text = "\n".join(e["message"] for e in events)
            assert "requirements.txt: already satisfied" in text  # src/requirements.txt
            assert f"data: {len(y)} samples from 1 files" in text  # the channel, not sklearn's copy

        best = max(trials, key=lambda t: t.value or 0.0)
        best_job = sm.describe_training_job(TrainingJobName=f"digits-hgb-{best.number}-1")
        model = f"s3://{BUCKET}/digits-hgb/digits-hgb-{best.number}-1/output/model.tar.gz"
        assert best_job["ModelArtifacts"]["S3ModelArtifacts"] == model  # SageMaker's path
        assert s3_tar_names(s3, model) == ["model.pkl"]

        again = run_sweep(str(_quickstart(tmp_path, url, 6)))  # resume with a bigger budget
        assert again.returncode == 0, again.stdout + again.stderr
        assert "is already on S3 (unchanged), not uploaded again" in again.stdout
        assert "uploading" not in again.stdout
        assert _keys(s3, BUCKET, "digits-hgb/digits-hgb/source/") == code
        assert s3.head_object(Bucket=BUCKET, Key=code[0])["LastModified"] == uploaded
        assert len(sweep_trials(tmp_path / "space.yaml", "digits-hgb")) == 6


OFFSET_SCRIPT = textwrap.dedent(
    """
    import argparse, os, pathlib
    p = argparse.ArgumentParser()
    p.add_argument("-x", type=float, required=True)
    a = p.parse_args()
    offset = float(pathlib.Path(os.environ["SM_CHANNEL_TRAIN"], "sub", "offset.txt").read_text())
    print(f"loss={(a.x - 0.3) ** 2 + offset:.10f}")
    """
)


def test_local_inputs_are_uploaded_once_for_the_embedded_emulator(tmp_path: Path) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "sub" / "offset.txt").write_text("10")
    doc = space_doc(budget={"max_trials": 2, "max_parallel": 2})
    doc["estimator"]["inputs"] = {"train": "data"}
    space = write_sweep(tmp_path, doc, OFFSET_SCRIPT)
    first = run_sweep(str(space))
    assert first.returncode == 0, first.stdout + first.stderr
    assert re.search(
        r"input train: uploading .*data \(1 files\) to s3://.*/inputs/train/", first.stdout
    )
    assert all(t.value is not None and t.value >= 10 for t in sweep_trials(space))
    doc["budget"]["max_trials"] = 3
    space.write_text(yaml.safe_dump(doc))
    again = run_sweep(str(space))
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"input train: .* is already on S3 \(unchanged\)", again.stdout)
    assert len(sweep_trials(space)) == 3


def test_kind_sagemaker_runs_unchanged_against_sagemaker_compatible_endpoints(
    tmp_path: Path,
) -> None:
    """``backend.kind: sagemaker`` with the endpoints pointed at a standalone emulator: the
    AWS path end to end (standard credential chain, STS for the default bucket, the SDK's
    image URI, uploads), with only the endpoints changed."""
    with standalone_emulator(tmp_path / "emulator") as url:
        s3_url = emulator_info(url)["s3_endpoint_url"]
        doc = space_doc(budget={"max_trials": 2, "max_parallel": 2})
        doc["estimator"] |= {
            "role": "arn:aws:iam::123456789012:role/SageMakerRole",
            "framework": "sklearn",
            "framework_version": "1.2-1",
            "py_version": "py3",
        }
        doc["backend"] = {
            "kind": "sagemaker",
            "region": "us-east-1",
            "endpoint_url": url,
            "s3_endpoint_url": s3_url,
        }
        space = write_sweep(tmp_path, doc)
        keys = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}  # the chain's
        result = run_sweep(str(space), env=keys)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Sweep quad: 2 trials (2 complete" in result.stdout
        job = boto3_client(url).describe_training_job(TrainingJobName="quad-0-1")
        image = job["AlgorithmSpecification"]["TrainingImage"]
        assert image.endswith(
            ".dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
        )
        assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/quad/"  # made via STS
        s3_client(s3_url).head_object(Bucket=BUCKET, Key="quad/quad-0-1/output/model.tar.gz")

        doc["budget"]["max_trials"] = 3  # one more job to create, with keys it refuses
        space.write_text(yaml.safe_dump(doc))
        wrong = run_sweep(str(space), env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"})
        assert "quad-2-1" not in list_jobs(url)  # the keys really come from the chain
        assert wrong.returncode == 1, wrong.stdout[-3000:]
        # STS is asked first (the default bucket's account), and refuses as AWS's STS does
        assert "error: AWS refused the request (InvalidClientTokenId" in wrong.stderr, wrong.stdout[
            -6000:
        ]
        assert "Traceback" not in wrong.stderr
        trials = sweep_trials(space)
        assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]  # refused before asking
        fixed = run_sweep(str(space), env=keys)  # the resumed sweep creates it
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert "quad-2-1" in list_jobs(url)
