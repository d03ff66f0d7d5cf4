"""The five services as separate processes, on the real Kafka and PostgreSQL of the test."""

import asyncio
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.support.polling import eventually
from tests.support.ports import free_port

SERVICES = {  # service -> (module, env var of its port)
    "segment-svc": ("segment_svc", "HTTP_PORT"),
    "flow-engine": ("flow_engine", "HTTP_PORT"),
    "scheduler": ("scheduler", "HTTP_PORT"),
    "mailer": ("mailer", "HTTP_PORT"),
    "campaign-api": ("campaign_api", "GATEWAY_PORT"),
}
API_KEY = "test-key"
# The services that consume topics, of which `start_all(replicas=2)` runs two.
CONSUMERS = ("segment-svc", "scheduler", "mailer", "campaign-api")


@dataclass
class System:
    database_url: str
    kafka_bootstrap: str
    topic_prefix: str
    smtp_port: int
    logs: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": self.topic_prefix,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "API_KEYS": API_KEY,
            "SEGMENT_SVC_URL": f"http://127.0.0.1:{self.ports['segment-svc']}",
            "FLOW_ENGINE_URL": f"http://127.0.0.1:{self.ports['flow-engine']}",
            "SCHEDULER_URL": f"http://127.0.0.1:{self.ports['scheduler']}",  # their /healthz, for /api/status
            "MAILER_URL": f"http://127.0.0.1:{self.ports['mailer']}",
            "LOG_LEVEL": "INFO",
            "PUBLIC_BASE_URL": self.gateway,  # the links in emails lead to this system's gateway
            "TRACKING_SECRET": "e2e-tracking-secret",
            **self.extra_env,
        }

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports['campaign-api']}"

    def start(self, name: str) -> None:
        """Starts `name`: a service, or a replica of one (`mailer#2`)."""
        module, port_var = SERVICES[name.partition("#")[0]]
        self.processes[name] = spawn(module, {**self.env(), port_var: str(self.ports[name])}, self.logs / f"{name}.log")

    async def start_all(self, replicas: int = 1, replicated: tuple[str, ...] = CONSUMERS) -> None:
        """Every service, and `replicas` in all of each of `replicated`."""
        names = [*SERVICES, *(f"{service}#{n}" for n in range(2, replicas + 1) for service in replicated)]
        ports: set[int] = set()
        while len(ports) < len(names):  # a port each
            ports.add(free_port())
        self.ports = dict(zip(names, sorted(ports), strict=True))
        for name in names:
            self.start(name)
        for name in names:
            await self.wait_healthy(name)

    async def wait_healthy(self, service: str, timeout: float = 60.0) -> None:
        await wait_healthy(self.ports[service], self.processes[service], timeout)

    def stop_all(self) -> None:
        stop_processes(self.processes.values())


def spawn(module: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """One service as a process of its own, its output in `log`."""
    with open(log, "ab") as output:
        return subprocess.Popen([sys.executable, "-m", module], env=env, stdout=output, stderr=subprocess.STDOUT)


async def wait_healthy(port: int, process: subprocess.Popen, timeout: float = 60.0) -> dict:
    """The service's /healthz answer, once it gives one."""
    url = f"http://127.0.0.1:{port}/healthz"

    async def healthy():
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}")
        try:
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                return response.status == 200 and await response.json()
        except aiohttp.ClientError:
            return False

    return await eventually(healthy, f"{url} answers", timeout=timeout, every=0.2)


def stop_processes(processes) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


class Gateway:
    """A client of campaign-api, with the API key."""

    def __init__(self, base: str) -> None:
        self._base = base
        self._session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"})

    async def call(self, method: str, path: str, json=None) -> tuple[int, dict]:
        async with self._session.request(method, self._base + path, json=json) as response:
            body = await response.json(content_type=None) if response.status != 204 else {}
            return response.status, body

    async def send(self, path: str, body, content_type: str) -> tuple[int, dict]:
        """POSTs a body that is not JSON (bytes, or an async iterator of them, streamed)."""
        async with self._session.post(self._base + path, data=body, headers={"Content-Type": content_type}) as response:
            return response.status, await response.json(content_type=None)

    async def ok(self, method: str, path: str, json=None, expect: int = 200) -> dict:
        status, body = await self.call(method, path, json)
        assert status == expect, f"{method} {path}: {status} {body}"
        return body

    async def segment_of(self, contacts: list[dict]) -> dict:
        """Creates these contacts (opted in unless they say otherwise) and a segment of
        exactly them: they share an attribute no other contact has."""
        tag = uuid.uuid4().hex
        for contact in contacts:
            await self.ok("POST", "/api/contacts", {"marketing_opt_in": True, "attributes": {"tag": tag}, **contact},
                          expect=201)
        return await self.ok("POST", "/api/segments", {"name": tag, "criteria": {
            "operator": "AND", "conditions": [{"field": "attributes.tag", "op": "eq", "value": tag}]}}, expect=201)

    async def close(self) -> None:
        await self._session.close()


async def stop(system: System) -> None:
    await asyncio.to_thread(system.stop_all)
