"""The emulator's HTTP server on 127.0.0.1: SageMaker, CloudWatch Logs and metrics,
and sagemaker-metrics on one port.

SageMaker and Logs requests are ``POST /`` with ``X-Amz-Target: <service>.<Operation>``
(JSON 1.1); CloudWatch's are ``POST /service/<prefix>/operation/<Operation>`` (Smithy RPC
v2 CBOR) or JSON 1.0; sagemaker-metrics is rest-json. Every body is validated against
botocore's service model before the operation runs (:mod:`sweeper.emulator.wire`), and
errors are answered as AWS answers them (``__type`` + ``message``, HTTP 400 for client
errors).

Requests are counted by operation (``Emulator.calls``; ``GET /_emulator/stats``), so
tests and benchmarks can measure API calls per trial.

Differences from SageMaker, by design: the training image is not pulled or run; a job
runs as a local process with this Python interpreter (its script-mode entry point, or
its ``ContainerEntrypoint`` with its tree at ``/opt/ml``: :mod:`sweeper.emulator.opt_ml`).
S3 is moto's S3 server on another loopback port (:mod:`sweeper.emulator.s3`), announced
with the region and account at ``GET /_emulator/info``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from functools import partial
from typing import Any

import botocore.session
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from aiohttp import web

from sweeper.emulator import (
    bodies,
    cloudwatch,
    container,
    mlflow_runs,
    pools,
    search,
    spot,
    tags,
    wire,
)
from sweeper.emulator.errors import AwsError, not_found, validation
from sweeper.emulator.experiments import Experiments
from sweeper.emulator.host import lock_state, raise_file_limit, require_loopback
from sweeper.emulator.jobs import Job
from sweeper.emulator.logs import LogStore
from sweeper.emulator.metric_series import MetricSeries
from sweeper.emulator.reaper import Reaper
from sweeper.emulator.runner import Runner
from sweeper.emulator.s3 import S3Server
from sweeper.emulator.settings import EmulatorSettings
from sweeper.emulator.transfer import Transfer
from sweeper.patterns import Pattern

JSON, REST = wire.Protocol.JSON_11, wire.Protocol.REST_JSON
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class Emulator:
    """The SageMaker-compatible service. All state lives on its event loop."""

    def __init__(self, settings: EmulatorSettings, s3: S3Server | None = None) -> None:
        """Take the state directory (StateInUse if another emulator has it) and load it;
        ``s3``: its S3 child, if already spawned (else made here, started by :meth:`serve`)."""
        require_loopback(settings.host)
        self._lock = lock_state(settings.runner.root)  # before reading any of it
        self.settings = settings
        self.calls: Counter[str] = Counter()
        self.jobs = Job.load_all(settings.runner.root / "records")
        self._tasks: dict[str, asyncio.Task[None]] = {}
        s = settings.runner
        self.logs = LogStore(s.root, s.region, s.account)
        self.logs.load()
        self.series = MetricSeries(s.root)
        self._runner = Runner(settings.runner, self.logs, self.series)
        self.experiments = Experiments(
            s.root, s.region, s.account, component_quota=settings.trial_component_quota
        )
        self._runner.on_finish = self._job_finished
        self.s3 = s3 or S3Server(s.root, s.region, settings.credentials)
        session = botocore.session.get_session()
        self._models = {
            "SageMaker": session.get_service_model("sagemaker"),
            "Logs_20140328": session.get_service_model("logs"),
            "metrics": session.get_service_model("sagemaker-metrics"),
            cloudwatch.TARGET: session.get_service_model("cloudwatch"),
        }
        self._tg: asyncio.TaskGroup | None = None
        self._door = wire.Door(
            dict(settings.credentials),
            settings.throttle_rate,
            settings.internal_failure_rate,
            settings.seed,
        )
        self._ops: dict[str, Handler] = {
            "CreateTrainingJob": self._create,
            "DescribeTrainingJob": self._describe,
            "ListTrainingJobs": self._list,
            "Search": self._search,
            "StopTrainingJob": self._stop,
            "UpdateTrainingJob": self._update,
            "DescribeLogStreams": self._sync(self.logs.describe_log_streams),
            "GetLogEvents": self._sync(self.logs.get_log_events),
            "FilterLogEvents": self._sync(self.logs.filter_log_events),
        }
        self._ops |= {op: self._sync(fn) for op, fn in self.experiments.operations().items()}
        self._ops |= {op: self._sync(partial(fn, self.jobs)) for op, fn in tags.OPERATIONS.items()}
        self._metric_ops = cloudwatch.CloudWatch(self.series, self.jobs).operations()
        self._service_of = {op: "Logs_20140328" if "Log" in op else "SageMaker" for op in self._ops}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=bodies.MAX_BODY)
        app.router.add_post("/", self._handle)
        app.router.add_get("/_emulator/stats", self._stats)
        app.router.add_get("/_emulator/info", self._info)
        app.router.add_put("/BatchPutMetrics", self._put_metrics)  # sagemaker-metrics
        app.router.add_post("/service/{service}/operation/{op}", self._rpc_v2)  # CloudWatch
        return app

    async def serve(self, started: Callable[[str], None], stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; ``started(endpoint_url)`` once listening.

        Jobs still running at shutdown are killed and end Failed (InternalServerError).
        """
        raise_file_limit()  # each running job holds two pipes
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        try:
            self._runner.reaper = reaper = Reaper()
            await reaper.start()
            s3_url = await self.s3.start()
            key, secret = self.settings.credentials[0]
            async with (
                get_session().create_client(
                    "s3",
                    endpoint_url=s3_url,
                    region_name=self.settings.runner.region,
                    aws_access_key_id=key,
                    aws_secret_access_key=secret,
                    verify=False,  # plain HTTP on loopback: no CA bundle to load
                    config=AioConfig(
                        s3={"addressing_style": "path"},
                        max_pool_connections=32,
                        # loopback: no CRC32 per transfer (it costs the jobs' critical path)
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                    ),
                ) as s3,
                asyncio.TaskGroup() as tg,
            ):
                self._runner.transfer = Transfer(s3)
                self._tg = tg
                site = web.TCPSite(runner, self.settings.host, self.settings.port)
                await site.start()
                host, port = runner.addresses[0][:2]
                self._runner.aws = container.aws_environment(
                    f"http://{host}:{port}", s3_url, self.settings.runner.region, (key, secret)
                )
                started(f"http://{host}:{port}")
                await stop.wait()
                for task in self._tasks.values():
                    task.cancel()
        finally:
            await runner.cleanup()
            self.experiments.flush()
            self.series.flush()
            if self._runner.reaper is not None:
                await self._runner.reaper.stop()
            await self.s3.stop()
            self._lock.close()  # another emulator may use the state now

    async def _stats(self, request: web.Request) -> web.Response:
        body = {"calls": dict(self.calls), "jobs": len(self.jobs), "pid": os.getpid()}
        return web.json_response(body)

    async def _info(self, request: web.Request) -> web.Response:
        """Where the emulator's S3 (and STS) is, and the account and region it plays."""
        s = self.settings.runner
        body = {"s3_endpoint_url": self.s3.endpoint_url, "region": s.region, "account": s.account}
        return web.json_response(body)

    async def _put_metrics(self, request: web.Request) -> web.Response:
        """sagemaker-metrics (rest-json): errors carry ``x-amzn-ErrorType``."""
        self.calls["BatchPutMetrics"] += 1
        try:
            op = self._models["metrics"].operation_model("BatchPutMetrics")
            params = await self._door.params(request, "BatchPutMetrics", op)
            return wire.answer(REST, 200, self.experiments.put_metrics(params))
        except AwsError as err:
            return wire.answer(REST, err.status, err.body(), {"x-amzn-ErrorType": err.code})

    def _job_finished(self, job: Job) -> None:
        self.series.flush(job.name)
        artifact = None if job.status == "Failed" else f"{job.output_prefix}/model.tar.gz"
        self.experiments.job_finished(
            job.name, job.status, job.failure_reason, job.metrics, artifact
        )

    async def _rpc_v2(self, request: web.Request) -> web.Response:
        """Smithy RPC v2 CBOR: ``POST /service/<target prefix>/operation/<operation>``."""
        service, op = request.match_info["service"], request.match_info["op"]
        return await self._cloudwatch(request, service, op, wire.Protocol.CBOR)

    async def _cloudwatch(
        self, request: web.Request, service: str, op: str, protocol: wire.Protocol
    ) -> web.Response:
        self.calls[op] += 1
        known = service == cloudwatch.TARGET and op in self._metric_ops
        try:
            model = self._models[cloudwatch.TARGET].operation_model(op) if known else None
            params = await self._door.params(request, f"{service}.{op}", model, protocol)
            return wire.answer(protocol, 200, self._metric_ops[op](params))
        except AwsError as exc:
            return wire.answer(protocol, exc.status, *cloudwatch.query_error(exc))

    async def _handle(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        service, _, op = target.partition(".")
        if service == cloudwatch.TARGET:  # CloudWatch in JSON 1.0
            return await self._cloudwatch(request, service, op, wire.Protocol.JSON_10)
        self.calls[op or "?"] += 1
        known = self._service_of.get(op) == service
        try:
            model = self._models[service].operation_model(op) if known else None
            params = await self._door.params(request, target, model)
            return wire.answer(JSON, 200, await self._ops[op](params))
        except AwsError as exc:
            return wire.answer(JSON, exc.status, exc.body())

    @staticmethod
    def _sync(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Handler:
        async def handler(params: dict[str, Any]) -> dict[str, Any]:
            return fn(params)

        return handler

    # --- operations -----------------------------------------------------------------

    async def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        request = self._checked(params)
        mlflow = None
        if request.get("MlflowConfig"):  # MLflow's client blocks: in a thread
            servers = dict(self.settings.mlflow)
            mlflow = await asyncio.to_thread(mlflow_runs.resolve, request, servers)
        return self._register(request, mlflow)

    def _checked(self, params: dict[str, Any]) -> dict[str, Any]:
        """The job's request as stored, once what botocore's model cannot say is checked."""
        self._name_free(params["TrainingJobName"])
        channels = [c["ChannelName"] for c in params.get("InputDataConfig", [])]
        if any(c in (".", "..") for c in channels) or len(set(channels)) != len(channels):
            # The model's pattern admits "." and ".."; as directory names they are not
            # channels (an emulator choice: SageMaker's own answer is undocumented).
            raise validation(f"Channel names must be unique and not '.' or '..': {channels}")
        for metric in params["AlgorithmSpecification"].get("MetricDefinitions", []):
            try:
                Pattern(metric["Regex"], f"MetricDefinitions {metric['Name']!r} regex")
            except ValueError as exc:
                raise validation(str(exc)) from None
        stopping = params.get("StoppingCondition") or {}
        stopping.setdefault("MaxRuntimeInSeconds", 86400)
        spot.check_request(params, stopping)
        return {**params, "StoppingCondition": stopping}

    def _name_free(self, name: str) -> None:
        if name in self.jobs:
            raise AwsError(
                "ResourceInUse",
                "Training job names must be unique within an AWS account and region, and a "
                f"training job with this name already exists ({self.jobs[name].arn})",
            )

    def _register(
        self, request: dict[str, Any], mlflow: mlflow_runs.MlflowRun | None
    ) -> dict[str, Any]:
        """Take the job's name and start it: no await from the name's check to here."""
        name = request["TrainingJobName"]
        self._name_free(name)  # again: another request may have taken it meanwhile
        s = self.settings.runner
        arn = f"arn:aws:sagemaker:{s.region}:{s.account}:training-job/{name.lower()}"
        job = Job(request=request, arn=arn, created=time.time())
        job.mlflow = asdict(mlflow) if mlflow is not None else None
        job.record_path = s.root / "records" / f"{name}.json"
        pools.check_quotas(job, self.jobs.values(), s.instance_quota, s.warm_pool_quota)
        self.experiments.job_created(request, arn)  # its own trial component, if asked
        job.warm = pools.claim(job, self.jobs.values())
        job.interruptible = self._runner.spot.will_interrupt(request)
        job.modified = job.created
        job.save()  # known after a restart from here on (as Failed, if it was running)
        self.jobs[name] = job
        assert self._tg is not None, "the emulator is not serving"
        self._tasks[name] = self._tg.create_task(self._runner.run(job), name=f"job:{name}")
        return {"TrainingJobArn": arn}

    async def _describe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._job(params["TrainingJobName"]).describe()

    async def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        jobs = search.list_jobs(list(self.jobs.values()), params)
        page, token = search.paginate(jobs, params, default=10)
        out: dict[str, Any] = {"TrainingJobSummaries": [j.summary() for j in page]}
        if token:
            out["NextToken"] = token
        return out

    async def _search(self, params: dict[str, Any]) -> dict[str, Any]:
        resource = params["Resource"]
        if resource == "TrainingJob":
            records = [{"TrainingJob": r} for r in search.search_jobs(self.jobs, params)]
        elif resource in ("ExperimentTrialComponent", "Experiment", "ExperimentTrial"):
            records = self.experiments.search(resource, params)
        else:
            raise validation(f"The emulator does not search {resource}")
        page, token = search.paginate(records, params, default=10)
        out: dict[str, Any] = {
            "Results": page,
            "TotalHits": {"Value": len(records), "Relation": "EqualTo"},
        }
        if token:
            out["NextToken"] = token
        return out

    async def _stop(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.jobs.get(params["TrainingJobName"])
        if job is None:  # Stop's modeled error, unlike Describe's ValidationException
            raise AwsError("ResourceNotFound", "Requested resource not found.")
        if job.status != "InProgress":
            raise validation(
                f"The request was rejected because the training job is in status {job.status}."
            )
        job.stop_requested.set()
        job.stopping()  # Describe says Stopping at once; the runner ends the job
        return {}

    async def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.jobs.get(params["TrainingJobName"])
        if job is None:
            raise AwsError("ResourceNotFound", "Requested resource not found.")
        if "ResourceConfig" in params:
            pools.update(job, params["ResourceConfig"]["KeepAlivePeriodInSeconds"])
        return {"TrainingJobArn": job.arn}

    def _job(self, name: str) -> Job:
        job = self.jobs.get(name)
        if job is None:
            raise not_found()
        return job
