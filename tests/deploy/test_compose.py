"""docker-compose.yml scales out: no container has a fixed name and only the gateway
publishes a host port, a range with one port per replica. Read as YAML always, and as
`docker compose config` resolves it when a Compose plugin is there (deploy/tools.sh
compose builds one under .local). No Docker engine is needed: nothing is built or run."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCALABLE = {"campaign-api", "segment-svc", "flow-engine", "scheduler", "mailer"}
LOCAL_PLUGIN = ROOT / ".local" / "tools" / "docker"  # DOCKER_CONFIG of deploy/tools.sh compose


def check_scalable(services: dict) -> None:
    assert SCALABLE <= set(services)
    named = [name for name, service in services.items() if "container_name" in service]
    assert not named, f"a fixed container_name cannot be scaled: {named}"
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == {"campaign-api"}, "only the gateway publishes a host port"


def published_range(port) -> tuple[int, int]:
    """(first, last) host port of a short ("8080-8089:8080") or long ({published: ...}) port."""
    published = port["published"] if isinstance(port, dict) else port.rsplit(":", 1)[0]
    first, _, last = str(published).partition("-")
    return int(first), int(last or first)


def test_no_fixed_names_and_only_the_gateway_publishes_a_port_range():
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    check_scalable(services)
    # GATEWAY_PORTS, 8080-8089 by default: each replica of the gateway takes the next free one.
    assert services["campaign-api"]["ports"] == ["${GATEWAY_PORTS:-8080-8089}:8080"]
    for name in SCALABLE:
        environment = services[name]["environment"]
        assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    # Unset unless the shell sets them: an empty SMTP_USERNAME would make the mailer AUTH as "".
    assert services["mailer"]["environment"]["SMTP_USERNAME"] is None
    assert services["mailer"]["environment"]["SMTP_PASSWORD"] is None
    topics = services["topics"]["environment"]
    assert topics["KAFKA_REPLICATION_FACTOR"] == "${KAFKA_REPLICATION_FACTOR:-1}"
    assert topics["KAFKA_MIN_INSYNC_REPLICAS"] == "${KAFKA_MIN_INSYNC_REPLICAS:-1}"


def compose(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "compose", "-f", str(COMPOSE_FILE), *arguments], capture_output=True,
                          text=True, timeout=60, env=env)


@pytest.fixture
def compose_env() -> dict[str, str]:
    env = dict(os.environ)
    if "DOCKER_CONFIG" not in env and (LOCAL_PLUGIN / "config.json").exists():
        env["DOCKER_CONFIG"] = str(LOCAL_PLUGIN)
    try:
        found = compose("version", env=env)
    except (OSError, subprocess.TimeoutExpired):
        found = None
    if found is None or found.returncode != 0:
        pytest.skip("no docker compose plugin here (deploy/tools.sh compose builds one)")
    return env


def test_docker_compose_resolves_it_as_scalable(compose_env):
    resolved = compose("config", "--format", "json", env={**compose_env, "GATEWAY_PORTS": "9000-9004",
                                                         "KAFKA_REPLICATION_FACTOR": "3"})
    assert resolved.returncode == 0, resolved.stderr
    services = json.loads(resolved.stdout)["services"]
    check_scalable(services)
    [port] = services["campaign-api"]["ports"]
    assert published_range(port) == (9000, 9004)
    assert services["topics"]["environment"]["KAFKA_REPLICATION_FACTOR"] == "3"
    assert services["mailer"]["environment"]["KAFKA_MIN_INSYNC_REPLICAS"] == "1"
