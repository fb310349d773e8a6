"""SageMaker Experiments in the emulator: experiments, trials, trial components, metrics.

Operations answer as SageMaker does (see the reference's Experiments section):
duplicates are ``ValidationException`` "... already exists"; AssociateTrialComponent
refuses a 51st user component in a trial and CreateTrial a 301st trial in an
experiment with ``ResourceLimitExceeded`` and AWS's message; components made for
training jobs (``<job>-aws-training-job``) do not count toward the first quota.
BatchPutMetrics values are rolled into the component's ``Metrics`` summaries.

The store is kept under ``<root>/experiments/``, one file per record (see
:mod:`~sweeper.emulator.shelves`): changed records are written at most twice a second,
and when the emulator stops.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from sweeper.emulator import experiment_shapes as shapes
from sweeper.emulator.errors import validation
from sweeper.emulator.search import search_records
from sweeper.emulator.shelves import Shelves

JOB_SUFFIX = "-aws-training-job"
_SAVE_DELAY = 0.5  # seconds
_KINDS = ("experiments", "trials", "components")


class Experiments:
    """All Experiments state of one emulator. Emulator loop only (not task-safe)."""

    def __init__(
        self,
        root: Path,
        region: str,
        account: str,
        component_quota: int | None = 50,
        trial_quota: int = 300,
    ) -> None:
        self._arn = f"arn:aws:sagemaker:{region}:{account}"
        self.component_quota = component_quota
        self.trial_quota = trial_quota
        self._shelves = Shelves(root / "experiments", _KINDS)
        self._flush_due = False
        tables = _load(self._shelves, root / "experiments.json")
        self.experiments: dict[str, dict[str, Any]] = tables["experiments"]
        self.trials: dict[str, dict[str, Any]] = tables["trials"]
        self.components: dict[str, dict[str, Any]] = tables["components"]

    def operations(self) -> dict[str, Any]:
        """SageMaker operation name -> handler (params -> response)."""
        return {
            "CreateExperiment": self.create_experiment,
            "DescribeExperiment": self.describe_experiment,
            "ListExperiments": self.list_experiments,
            "DeleteExperiment": self.delete_experiment,
            "CreateTrial": self.create_trial,
            "DescribeTrial": self.describe_trial,
            "ListTrials": self.list_trials,
            "DeleteTrial": self.delete_trial,
            "CreateTrialComponent": self.create_component,
            "DescribeTrialComponent": self.describe_component,
            "UpdateTrialComponent": self.update_component,
            "ListTrialComponents": self.list_components,
            "DeleteTrialComponent": self.delete_component,
            "AssociateTrialComponent": self.associate,
            "DisassociateTrialComponent": self.disassociate,
        }

    # --- experiments and trials -------------------------------------------------------

    def create_experiment(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ExperimentName"]
        if name in self.experiments:
            raise validation(f"Experiment with name {name} already exists.")
        arn = f"{self._arn}:experiment/{name.lower()}"
        self.experiments[name] = shapes.record(p, "ExperimentName", "ExperimentArn", arn)
        self._save("experiments", name)
        return {"ExperimentArn": arn}

    def describe_experiment(self, p: dict[str, Any]) -> dict[str, Any]:
        return shapes.public(self._experiment(p["ExperimentName"]))

    def list_experiments(self, p: dict[str, Any]) -> dict[str, Any]:
        return shapes.listing(
            list(self.experiments.values()), p, "ExperimentSummaries", "ExperimentName"
        )

    def delete_experiment(self, p: dict[str, Any]) -> dict[str, Any]:
        exp = self._experiment(p["ExperimentName"])
        if any(t["ExperimentName"] == exp["ExperimentName"] for t in self.trials.values()):
            raise validation("The experiment still has trials; delete them first.")
        del self.experiments[exp["ExperimentName"]]
        self._save("experiments", exp["ExperimentName"])
        return {"ExperimentArn": exp["ExperimentArn"]}

    def create_trial(self, p: dict[str, Any]) -> dict[str, Any]:
        name, experiment = p["TrialName"], p["ExperimentName"]
        self._experiment(experiment)
        if name in self.trials:
            raise validation(f"Trial with name {name} already exists.")
        used = sum(t["ExperimentName"] == experiment for t in self.trials.values())
        if used >= self.trial_quota:
            raise shapes.quota(shapes.TRIALS_PER_EXPERIMENT, self.trial_quota, "Trials", used)
        arn = f"{self._arn}:experiment-trial/{name.lower()}"
        self.trials[name] = shapes.record(p, "TrialName", "TrialArn", arn)
        self._save("trials", name)
        return {"TrialArn": arn}

    def describe_trial(self, p: dict[str, Any]) -> dict[str, Any]:
        return shapes.public(self._trial(p["TrialName"]))

    def list_trials(self, p: dict[str, Any]) -> dict[str, Any]:
        trials = list(self.trials.values())
        if "ExperimentName" in p:
            trials = [t for t in trials if t["ExperimentName"] == p["ExperimentName"]]
        if "TrialComponentName" in p:
            parents = self._component(p["TrialComponentName"])["parents"]
            trials = [t for t in trials if t["TrialName"] in parents]
        return shapes.listing(trials, p, "TrialSummaries", "TrialName")

    def delete_trial(self, p: dict[str, Any]) -> dict[str, Any]:
        trial = self._trial(p["TrialName"])
        if any(trial["TrialName"] in c["parents"] for c in self.components.values()):
            raise validation("The trial still has trial components; disassociate them first.")
        del self.trials[trial["TrialName"]]
        self._save("trials", trial["TrialName"])
        return {"TrialArn": trial["TrialArn"]}

    # --- trial components ---------------------------------------------------------------

    def create_component(
        self, p: dict[str, Any], source: dict[str, str] | None = None
    ) -> dict[str, Any]:
        name = p["TrialComponentName"]
        if name in self.components:
            raise validation(f"TrialComponent with name {name} already exists.")
        arn = f"{self._arn}:experiment-trial-component/{name.lower()}"
        record = shapes.record(p, "TrialComponentName", "TrialComponentArn", arn)
        record.update(parents=[], metric_values={})
        if source is not None:
            record["Source"] = source
        self.components[name] = record
        self._save("components", name)
        return {"TrialComponentArn": arn}

    def describe_component(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._view(self._component(p["TrialComponentName"]))

    def update_component(self, p: dict[str, Any]) -> dict[str, Any]:
        rec = self._component(p["TrialComponentName"])
        for key in ("DisplayName", "Status", "StartTime", "EndTime"):
            if key in p:
                rec[key] = p[key]
        for key in ("Parameters", "InputArtifacts", "OutputArtifacts"):
            rec[key] = {**rec.get(key, {}), **p.get(key, {})}
            for gone in p.get(f"{key}ToRemove", []):
                rec[key].pop(gone, None)
        rec["LastModifiedTime"] = time.time()
        self._save("components", rec["TrialComponentName"])
        return {"TrialComponentArn": rec["TrialComponentArn"]}

    def list_components(self, p: dict[str, Any]) -> dict[str, Any]:
        comps = list(self.components.values())
        if "ExperimentName" in p:
            in_exp = {
                n for n, t in self.trials.items() if t["ExperimentName"] == p["ExperimentName"]
            }
            comps = [c for c in comps if in_exp & set(c["parents"])]
        if "TrialName" in p:
            comps = [c for c in comps if p["TrialName"] in c["parents"]]
        if "SourceArn" in p:
            comps = [c for c in comps if c.get("Source", {}).get("SourceArn") == p["SourceArn"]]
        out = shapes.listing(comps, p, "TrialComponentSummaries", "TrialComponentName")
        for summary in out["TrialComponentSummaries"]:
            if "Source" in summary:
                summary["TrialComponentSource"] = summary.pop("Source")
        return out

    def delete_component(self, p: dict[str, Any]) -> dict[str, Any]:
        rec = self._component(p["TrialComponentName"])
        if rec["parents"]:
            raise validation("The trial component is associated with trials; disassociate it.")
        del self.components[rec["TrialComponentName"]]
        self._save("components", rec["TrialComponentName"])
        return {"TrialComponentArn": rec["TrialComponentArn"]}

    def associate(self, p: dict[str, Any]) -> dict[str, Any]:
        rec, trial = self._component(p["TrialComponentName"]), self._trial(p["TrialName"])
        name = trial["TrialName"]
        if name not in rec["parents"]:
            if "Source" not in rec:  # SageMaker's own components are exempt
                used = sum(
                    name in c["parents"] and "Source" not in c for c in self.components.values()
                )
                if self.component_quota is not None and used >= self.component_quota:
                    raise shapes.quota(
                        shapes.COMPONENTS_PER_TRIAL, self.component_quota, "Trial Components", used
                    )
            rec["parents"].append(name)
            self._save("components", rec["TrialComponentName"])
        return {"TrialComponentArn": rec["TrialComponentArn"], "TrialArn": trial["TrialArn"]}

    def disassociate(self, p: dict[str, Any]) -> dict[str, Any]:
        rec, trial = self._component(p["TrialComponentName"]), self._trial(p["TrialName"])
        if trial["TrialName"] in rec["parents"]:
            rec["parents"].remove(trial["TrialName"])
            self._save("components", rec["TrialComponentName"])
        return {"TrialComponentArn": rec["TrialComponentArn"], "TrialArn": trial["TrialArn"]}

    def put_metrics(self, p: dict[str, Any]) -> dict[str, Any]:
        """sagemaker-metrics BatchPutMetrics: values join the component's series."""
        rec = self.components.get(p["TrialComponentName"])
        if rec is None:
            return {
                "Errors": [
                    {"Code": "VALIDATION_ERROR", "MetricIndex": i}
                    for i in range(len(p["MetricData"]))
                ]
            }
        for datum in p["MetricData"]:
            series = rec["metric_values"].setdefault(datum["MetricName"], [])
            series.append(
                [float(datum["Timestamp"]), int(datum.get("Step", 0)), float(datum["Value"])]
            )
        self._save("components", rec["TrialComponentName"])
        return {}

    def search(self, resource: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Search records of ``ExperimentTrialComponent``, ``Experiment`` or ``ExperimentTrial``."""
        if resource == "ExperimentTrialComponent":
            records = [self._view(c, search=True) for c in self.components.values()]
            key = "TrialComponent"
        elif resource == "Experiment":
            records, key = [shapes.public(e) for e in self.experiments.values()], "Experiment"
        else:
            records, key = [shapes.public(t) for t in self.trials.values()], "Trial"
        return [{key: r} for r in search_records(records, params)]

    # --- training jobs ------------------------------------------------------------------

    def job_created(self, request: dict[str, Any], arn: str) -> None:
        """The component SageMaker makes for a job with ``ExperimentConfig``."""
        config = request.get("ExperimentConfig")
        if not config:
            return
        if "ExperimentName" in config:
            self._experiment(config["ExperimentName"])
        name = f"{request['TrainingJobName']}{JOB_SUFFIX}"
        params = {k: shapes.parameter(v) for k, v in request.get("HyperParameters", {}).items()}
        res = request.get("ResourceConfig", {})
        params |= {
            "SageMaker.ImageUri": {
                "StringValue": request["AlgorithmSpecification"].get("TrainingImage", "")
            },
            "SageMaker.InstanceType": {"StringValue": res.get("InstanceType", "")},
            "SageMaker.InstanceCount": {"NumberValue": float(res.get("InstanceCount", 1))},
        }
        source = {"SourceArn": arn.lower(), "SourceType": "SageMakerTrainingJob"}
        inputs = {
            c["ChannelName"]: {"Value": c["DataSource"]["S3DataSource"]["S3Uri"]}
            for c in request.get("InputDataConfig", [])
            if "S3DataSource" in c.get("DataSource", {})
        }
        image = request["AlgorithmSpecification"].get("TrainingImage")
        if image:
            inputs["SageMaker.ImageUri"] = {"Value": image}
        self.create_component(
            {
                "TrialComponentName": name,
                "Parameters": params,
                "InputArtifacts": inputs,
                "OutputArtifacts": {},
                "StartTime": time.time(),
                "Status": {"PrimaryStatus": "InProgress", "Message": "Starting"},
            },
            source=source,
        )
        self.components[name]["RunName"] = config.get("RunName")
        if config.get("TrialName") in self.trials:
            self.components[name]["parents"].append(config["TrialName"])
        self._save("components", name)

    def job_finished(
        self,
        name: str,
        status: str,
        reason: str | None,
        metrics: dict[str, tuple[float, float]],
        artifact: str | None,
    ) -> None:
        rec = self.components.get(f"{name}{JOB_SUFFIX}")
        if rec is None:
            return
        message = reason[:1024] if reason else f"Status: {status}"
        rec["Status"] = {"PrimaryStatus": status, "Message": message}
        rec["EndTime"] = rec["LastModifiedTime"] = time.time()
        for metric, (value, stamp) in metrics.items():
            rec["metric_values"][metric] = [[stamp, 0, value]]
        if artifact:
            rec["OutputArtifacts"] = {"SageMaker.ModelArtifact": {"Value": artifact}}
        self._save("components", rec["TrialComponentName"])

    # --- helpers ------------------------------------------------------------------------

    def _experiment(self, name: str) -> dict[str, Any]:
        if name not in self.experiments:
            raise shapes.missing("Experiment", name)
        return self.experiments[name]

    def _trial(self, name: str) -> dict[str, Any]:
        if name not in self.trials:
            raise shapes.missing("Trial", name)
        return self.trials[name]

    def _component(self, name_or_arn: str) -> dict[str, Any]:
        name = name_or_arn.rsplit("experiment-trial-component/", 1)[-1]
        rec = self.components.get(name) or next(
            (c for c in self.components.values() if c["TrialComponentName"].lower() == name), None
        )
        if rec is None:
            raise shapes.missing("TrialComponent", name_or_arn)
        return rec

    def _view(self, rec: dict[str, Any], search: bool = False) -> dict[str, Any]:
        out = shapes.public(rec)
        for key in ("Parameters", "InputArtifacts", "OutputArtifacts"):  # maps, never absent
            out.setdefault(key, {})
        out["Metrics"] = [shapes.summary(n, v, rec) for n, v in rec["metric_values"].items()]
        if search:
            out["Parents"] = [
                {"TrialName": t, "ExperimentName": self.trials[t]["ExperimentName"]}
                for t in rec["parents"]
                if t in self.trials
            ]
            out.setdefault("Tags", [])
        return out

    def _save(self, kind: str, name: str) -> None:
        """Write record ``name`` of ``kind`` soon (within :data:`_SAVE_DELAY`), with the
        rest of a burst of changes."""
        self._shelves.mark(kind, name)
        if self._flush_due:
            return
        self._flush_due = True
        try:
            asyncio.get_running_loop().call_later(_SAVE_DELAY, self.flush)
        except RuntimeError:  # no loop (a direct call): write now
            self.flush()

    def flush(self) -> None:
        """Write the records changed since the last flush, now. A disk that refuses (full,
        read-only) is said on stderr; the records stay in memory for the next flush."""
        self._flush_due = False
        if self._shelves.dirty:
            tables = {"experiments": self.experiments, "trials": self.trials}
            try:
                self._shelves.flush(tables | {"components": self.components})
            except OSError as exc:
                print(
                    f"emulator: Experiments records not written ({exc.strerror}); they are"
                    " written at the next change or stop",
                    file=sys.stderr,
                )


def _load(shelves: Shelves, legacy: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """The kept records; those of an earlier emulator's single ``legacy`` file are moved
    to the shelves first."""
    if not legacy.is_file():
        return shelves.load()
    tables: dict[str, dict[str, dict[str, Any]]] = json.loads(legacy.read_text())
    for kind in _KINDS:
        for name in tables[kind]:
            shelves.mark(kind, name)
    shelves.flush(tables)
    legacy.unlink()
    return tables
