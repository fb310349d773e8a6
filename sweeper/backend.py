"""Where the sweep's services are: SageMaker (AWS's or an endpoint the space file
names), a standalone emulator, or the sweep's own emulator in a child process for the
length of the sweep; and that emulator's settings from the space file."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sweeper.aws import template
from sweeper.config import BackendKind, EmulatorOptions, SweepConfig
from sweeper.emulator.child import ChildEmulator
from sweeper.emulator.host import EmulatorFailed, StateInUse
from sweeper.emulator.settings import EmulatorSettings, RunnerSettings, SpotSettings
from sweeper.errors import ConfigError, SweepError, local_fault


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where each service is (None: AWS's own), in which region, with which keys
    (None: the standard AWS credential chain)."""

    region: str
    sagemaker: str | None = None
    s3: str | None = None
    credentials: tuple[str, str] | None = None
    embedded: bool = False  # the sweep's own emulator, gone when the sweep exits

    async def client(self, stack: AsyncExitStack, service: str) -> Any:
        """A client for ``service`` (``sagemaker``, ``logs``, ``s3``, ``sts``) on ``stack``."""
        from sweeper.aws.clients import open_client  # aiobotocore: after the emulator's start

        url = self.s3 if service in ("s3", "sts") else self.sagemaker
        return await open_client(
            stack, service, region=self.region, endpoint_url=url, credentials=self.credentials
        )


@contextmanager
def endpoints(
    config: SweepConfig, out: TextIO | None = None, meanwhile: Callable[[], object] = lambda: None
) -> Iterator[Endpoints]:
    """The sweep's endpoints; the sweep's own (embedded) emulator runs for the block, in a
    child process (:mod:`sweeper.emulator.child`), unless the space file names SageMaker
    or a standalone emulator (it says so on ``out``, default stdout).

    ``meanwhile`` runs while that emulator boots (about a second): the caller's own
    imports, say; on any other backend, before the block. Blocks while the emulator
    boots: inside a running event loop, use :func:`started`."""
    if not embedded(config):
        yield _elsewhere(config, meanwhile)
        return
    emulator, keys = _spawn(config)
    try:
        meanwhile()
        _wait(emulator)
    except BaseException:
        emulator.close()
        raise
    with emulator:
        yield _announce(config, emulator, keys, out)


@asynccontextmanager
async def started(
    config: SweepConfig, out: TextIO | None = None, meanwhile: Callable[[], object] = lambda: None
) -> AsyncIterator[Endpoints]:
    """:func:`endpoints` for a caller inside a running event loop: the emulator's boot,
    a standalone emulator's question and ``meanwhile`` are awaited in threads, never
    blocking the loop (a notebook's, say)."""
    if not embedded(config):
        yield await asyncio.to_thread(_elsewhere, config, meanwhile)
        return
    emulator, keys = _spawn(config)
    try:
        await asyncio.gather(asyncio.to_thread(_wait, emulator), asyncio.to_thread(meanwhile))
    except BaseException:
        emulator.close()
        raise
    try:
        yield _announce(config, emulator, keys, out)
    finally:
        await asyncio.to_thread(emulator.close)


def embedded(config: SweepConfig) -> bool:
    """Whether the sweep runs on its own emulator (gone when the sweep exits)."""
    return config.backend.kind == BackendKind.EMULATOR and not config.backend.endpoint_url


def _elsewhere(config: SweepConfig, meanwhile: Callable[[], object]) -> Endpoints:
    """SageMaker's endpoints, or a standalone emulator's (its S3 asked for while
    ``meanwhile`` runs)."""
    region = template.region(config)
    backend = config.backend
    if backend.kind == BackendKind.SAGEMAKER:
        meanwhile()
        return Endpoints(region, backend.endpoint_url, backend.s3_endpoint_url)
    assert backend.endpoint_url is not None
    s3 = backend.s3_endpoint_url
    with ThreadPoolExecutor(1, thread_name_prefix="emulator-info") as asking:
        info = None if s3 else asking.submit(_announced_s3, backend.endpoint_url)
        meanwhile()  # while the emulator answers
        if info is not None:
            s3 = info.result()
    return Endpoints(region, backend.endpoint_url, s3, template.EMULATOR_CREDENTIALS)


def _spawn(config: SweepConfig) -> tuple[ChildEmulator, tuple[str, str]]:
    """The sweep's own emulator, booting in its child process, and its keys: random,
    known to this process only, so that no other program on the machine can sign a
    request to it (replace the code the next job runs, stop a job)."""
    keys = (f"sweeper-{secrets.token_hex(4)}", secrets.token_urlsafe(32))
    state = emulator_state(config)
    settings = emulator_settings(
        config.emulator, state, template.region(config), credentials=(keys,)
    )
    emulator = ChildEmulator(settings)
    emulator.spawn()
    return emulator, keys


def _wait(emulator: ChildEmulator) -> None:
    """Until the emulator serves; its failures said as the sweep's errors."""
    state = emulator.settings.runner.root
    try:
        emulator.wait()
    except StateInUse as exc:
        raise SweepError(str(exc)) from exc
    except EmulatorFailed as exc:
        raise SweepError(f"the sweep's emulator did not start: {exc}") from exc
    except OSError as exc:
        if local_fault(exc) is not None:
            raise  # a full disk, a read-only directory: said as such
        raise SweepError(
            f"the sweep's emulator cannot use its directory {state} ({exc}); move it aside"
            " (its jobs' records and S3 objects are in it) or repair it, then run the same"
            " command again"
        ) from exc


def _announce(
    config: SweepConfig, emulator: ChildEmulator, keys: tuple[str, str], out: TextIO | None
) -> Endpoints:
    print(
        f"SageMaker emulator on {emulator.endpoint_url} (jobs under {emulator_state(config)})",
        file=out or sys.stdout,
        flush=True,
    )
    region = template.region(config)
    return Endpoints(region, emulator.endpoint_url, emulator.s3_endpoint_url, keys, True)


def emulator_state(config: SweepConfig) -> Path:
    """Where the sweep's own emulator keeps its jobs and S3 objects."""
    return config.home / config.name / "emulator"


def _announced_s3(url: str) -> str:
    """A standalone emulator's S3 endpoint, from its ``/_emulator/info`` (blocking)."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/_emulator/info", timeout=10) as answer:
            info = json.load(answer)
        return str(info["s3_endpoint_url"])
    except (OSError, KeyError, TypeError, ValueError) as exc:  # URLError, HTTPError: OSError
        raise ConfigError(
            f"backend.endpoint_url: no emulator answers at {url} ({exc}); start one with"
            " `python sweep.py emulator`, or set backend.s3_endpoint_url"
        ) from exc


def emulator_settings(
    options: EmulatorOptions, state: Path, region: str, **server: Any
) -> EmulatorSettings:
    """The emulator's settings from the space file's ``emulator:`` section (or flags)."""
    runner = RunnerSettings(
        root=state,
        region=region,
        account=template.EMULATOR_ACCOUNT,
        cold_start_seconds=options.cold_start_seconds,
        warm_start_seconds=options.warm_start_seconds,
        instance_quota=options.instance_quota,
        warm_pool_quota=options.warm_pool_quota,
        pool_available_delay_seconds=options.pool_available_delay_seconds,
        internal_error_on_log=options.internal_error_on_log,
        spot=SpotSettings(
            interruption_rate=options.spot_interruption_rate,
            interruption_after_seconds=options.spot_interruption_after_seconds,
            interrupt_on_log=options.spot_interrupt_on_log,
            restart_delay_seconds=options.spot_restart_delay_seconds,
            discount=options.spot_discount,
            seed=options.seed,
        ),
    )
    return EmulatorSettings(
        runner,
        seed=options.seed,
        throttle_rate=options.throttle_rate,
        trial_component_quota=options.trial_component_quota,
        internal_failure_rate=options.internal_failure_rate,
        **server,
    )
