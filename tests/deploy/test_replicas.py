"""`REPLICAS=2 make up`: deploy/services.sh runs two of each consuming service, each on a
port and log of its own, says where each is, and stops every one of them by its pid."""

import asyncio
import os
import random
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.support.polling import eventually
from tests.support.servers import create_database, drop_database

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "deploy" / "services.sh"
STEP = 10  # REPLICA_PORT_STEP: the second of each is 10 ports above the first
FIRST_PORTS = {"campaign-api": 0, "segment-svc": 1, "flow-engine": 2, "scheduler": 3, "mailer": 4, "mailcatcher": 5}
CONSUMERS = ("campaign-api", "segment-svc", "scheduler", "mailer")


def free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_base() -> int:
    """A port from which the six first ports and the replicas' ones (base + STEP + ...) are
    free, below the kernel's ephemeral range."""
    while True:
        base = random.randint(20000, 29900)
        if all(free(base + offset) for offset in (*range(6), *range(STEP, STEP + 6))):
            return base


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def services_sh(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(SERVICES), command], env=env, capture_output=True, text=True, timeout=240)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def healthy(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as answer:
            return answer.status == 200
    except aiohttp.ClientError:
        return False


@pytest.fixture
async def instance(postgres_url, kafka_bootstrap, topic_prefix, tmp_path):
    """The environment of an instance of deploy/services.sh of this test's own: its state
    folder, database, topics and ports."""
    database_url = await create_database(postgres_url)
    base = free_base()
    env = {
        **os.environ,
        "STATE_DIR": str(tmp_path / "state"),
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "GATEWAY_PORT": str(base + FIRST_PORTS["campaign-api"]),
        "SEGMENT_SVC_PORT": str(base + FIRST_PORTS["segment-svc"]),
        "FLOW_ENGINE_PORT": str(base + FIRST_PORTS["flow-engine"]),
        "SCHEDULER_PORT": str(base + FIRST_PORTS["scheduler"]),
        "MAILER_PORT": str(base + FIRST_PORTS["mailer"]),
        "MAILCATCHER_PORT": str(base + FIRST_PORTS["mailcatcher"]),
        "REPLICA_PORT_STEP": str(STEP),
        "REPLICAS": "2",
    }
    yield base, env
    services_sh("stop", env)  # whatever the test left running
    await drop_database(postgres_url, database_url)


async def test_two_of_each_consumer_each_on_its_port_and_log_and_all_stopped_by_pid(instance):
    base, env = instance
    state = Path(env["STATE_DIR"])
    started = await asyncio.to_thread(services_sh, "start", env)
    assert started.returncode == 0, started.stderr

    expected = {name: base + offset for name, offset in FIRST_PORTS.items()}
    expected |= {f"{name}-2": base + FIRST_PORTS[name] + STEP for name in CONSUMERS}
    where = services_sh("where", env)
    assert where.returncode == 0, where.stderr
    listed = {}
    for line in where.stdout.splitlines():
        name, _, pid, address, log = line.split()
        listed[name] = (int(pid), int(address.rsplit(":", 1)[1]), Path(log))
    assert {name: port for name, (_, port, _) in listed.items()} == expected
    assert "flow-engine-2" not in listed, "flow-engine consumes nothing: one is enough"

    for name, (pid, port, log) in listed.items():
        assert pid_alive(pid), name
        assert log == state / "logs" / f"{name}.log" and log.exists(), name
        if name != "mailcatcher":
            assert await healthy(port), f"{name} on {port}"
    assert len({pid for pid, _, _ in listed.values()}) == len(listed)

    stopped = await asyncio.to_thread(services_sh, "stop", env)
    assert stopped.returncode == 0, stopped.stderr
    await eventually(lambda: not any(pid_alive(pid) for pid, _, _ in listed.values()), "every process stopped",
                     timeout=20)
    assert not list((state / "run").glob("*.pid"))
    assert not [port for port in expected.values() if listening(port)]


def test_replicas_must_be_a_positive_number(tmp_path):
    state = tmp_path / "state"
    refused = services_sh("start", {**os.environ, "STATE_DIR": str(state), "REPLICAS": "0"})
    assert refused.returncode != 0 and "REPLICAS must be a whole number of at least 1" in refused.stderr
    assert not (state / "run").exists(), "nothing was started"
