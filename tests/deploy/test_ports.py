"""The servers' ports lie below the kernel's ephemeral range, where clients take the ports
of their outgoing connections: a broker or database restarted on a port in that range can
find it taken (a reconnecting client once connected to itself there), and not come back."""

import subprocess
from pathlib import Path

import pytest

from servicekit.settings import CommonSettings
from tests.chaos.conftest import ENV as CHAOS
from tests.support.servers import KAFKA_BOOTSTRAP, POSTGRES_URL, ROOT

EPHEMERAL_START = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
SERVICE_PORTS = range(20000, 30000)  # where tests/support/ports.free_port picks the services' ports


def ports_of(instance: str) -> list[int]:
    shown = subprocess.run(
        ["bash", "-c", "source deploy/common.sh && echo $PG_PORT $KAFKA_PORT $KAFKA_CONTROLLER_PORT"],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "INSTANCE": instance}, capture_output=True, text=True, check=True)
    return [int(port) for port in shown.stdout.split()]


@pytest.mark.parametrize("instance", ["dev", "test"])
def test_the_servers_of_make_up_and_make_test_listen_below_the_ephemeral_range(instance):
    ports = ports_of(instance)
    chaos = [int(CHAOS[name]) for name in ("PG_PORT", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT")]
    for port in ports + chaos:
        assert port < EPHEMERAL_START and port not in SERVICE_PORTS, (instance, port)
    assert len(set(ports_of("dev") + ports_of("test") + chaos)) == 9, "no two instances share a port"


def test_the_defaults_and_the_tests_point_at_those_servers():
    dev_pg, dev_kafka, _ = ports_of("dev")
    test_pg, test_kafka, _ = ports_of("test")
    assert f":{dev_pg}/" in CommonSettings.model_fields["database_url"].default
    assert CommonSettings.model_fields["kafka_bootstrap_servers"].default.endswith(f":{dev_kafka}")
    assert f":{test_pg}/" in POSTGRES_URL and KAFKA_BOOTSTRAP.endswith(f":{test_kafka}")
