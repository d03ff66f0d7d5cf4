"""Topics are created with the replication the settings ask for, on the real broker."""

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pydantic import ValidationError

from contracts import topics
from servicekit.kafka import Topics
from servicekit.settings import TopicSettings
from servicekit.topics import ensure_topics

pytestmark = pytest.mark.integration

TOPIC_CONFIG_SET_ON_THE_TOPIC = 1  # DescribeConfigs' config source DYNAMIC_TOPIC_CONFIG


@asynccontextmanager
async def admin_of(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def described(kafka_bootstrap: str, topic: str) -> tuple[dict[str, tuple[str, int]], list[int]]:
    """The topic's configs ({name: (value, source)}) and each partition's count of replicas."""
    async with admin_of(kafka_bootstrap) as admin:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        [(error, message, _, _, entries)] = response.resources
        assert error == 0, message
        configs = {name: (value, source) for name, value, _read_only, source, *_ in entries}
        [metadata] = await admin.describe_topics([topic])
        return configs, [len(partition["replicas"]) for partition in metadata["partitions"]]


def prefix() -> str:
    return f"r{uuid.uuid4().hex[:10]}."


async def test_topics_carry_min_insync_replicas_and_replication_factor_of_their_own(kafka_bootstrap):
    names = Topics(prefix())
    made = await ensure_topics(kafka_bootstrap, names.prefix, replication_factor=1, min_insync_replicas=1)
    assert names.physical(topics.SEND_DUE) in made

    for topic in (topics.SEND_DUE, topics.CONTACT_CHANGED, topics.dlq_of(topics.SEND_DUE)):
        configs, replicas = await described(kafka_bootstrap, names.physical(topic))
        # Set on the topic itself, not the broker's default that would follow any broker change.
        assert configs["min.insync.replicas"] == ("1", TOPIC_CONFIG_SET_ON_THE_TOPIC), topic
        assert replicas and set(replicas) == {1}, topic
    configs, _ = await described(kafka_bootstrap, names.physical(topics.CONTACT_CHANGED))
    assert configs["cleanup.policy"][0] == "compact"


async def test_every_topic_made_is_served_by_the_broker_when_ensure_topics_returns(kafka_bootstrap):
    # With KRaft the controller answers CreateTopics before the broker's metadata holds the
    # topics; a service started right after would meet UNKNOWN_TOPIC_OR_PARTITION (CI, stop 21).
    for _ in range(3):
        names = Topics(prefix())
        made = await ensure_topics(kafka_bootstrap, names.prefix, replication_factor=1, min_insync_replicas=1)
        async with admin_of(kafka_bootstrap) as admin:
            [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in made])
        unknown = [name for error, _, _, name, *_ in response.resources if error != 0]
        assert len(made) == len(response.resources) and not unknown, unknown


async def test_more_replicas_than_brokers_is_refused_naming_the_setting(kafka_bootstrap):
    with pytest.raises(RuntimeError, match="KAFKA_REPLICATION_FACTOR"):
        await ensure_topics(kafka_bootstrap, prefix(), replication_factor=2, min_insync_replicas=1)


async def test_min_insync_above_the_replication_factor_is_refused_before_any_topic_is_made(monkeypatch):
    with pytest.raises(ValueError, match=r"KAFKA_MIN_INSYNC_REPLICAS \(2\) cannot exceed KAFKA_REPLICATION_FACTOR \(1\)"):
        await ensure_topics("127.0.0.1:1", prefix(), replication_factor=1, min_insync_replicas=2)
    with pytest.raises(ValidationError, match="cannot exceed"):
        TopicSettings(kafka_replication_factor=2, kafka_min_insync_replicas=3)
    monkeypatch.delenv("KAFKA_REPLICATION_FACTOR", raising=False)
    monkeypatch.delenv("KAFKA_MIN_INSYNC_REPLICAS", raising=False)
    defaults = TopicSettings()
    assert (defaults.kafka_replication_factor, defaults.kafka_min_insync_replicas) == (1, 1)


def run_topics_command(kafka_bootstrap: str, topic_prefix: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "servicekit.topics"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_TOPIC_PREFIX": topic_prefix, **env},
    )


async def test_the_topics_command_reads_the_settings(kafka_bootstrap):
    topic_prefix = prefix()
    done = run_topics_command(kafka_bootstrap, topic_prefix, KAFKA_REPLICATION_FACTOR="1", KAFKA_MIN_INSYNC_REPLICAS="1")
    assert done.returncode == 0, done.stderr
    assert "replication factor 1, min.insync.replicas 1" in done.stdout
    configs, _ = await described(kafka_bootstrap, f"{topic_prefix}{topics.EMAIL_STATUS}")
    assert configs["min.insync.replicas"] == ("1", TOPIC_CONFIG_SET_ON_THE_TOPIC)

    refused = run_topics_command(kafka_bootstrap, prefix(), KAFKA_REPLICATION_FACTOR="1", KAFKA_MIN_INSYNC_REPLICAS="2")
    assert refused.returncode != 0
    assert "KAFKA_MIN_INSYNC_REPLICAS (2) cannot exceed KAFKA_REPLICATION_FACTOR (1)" in refused.stderr
    too_many = run_topics_command(kafka_bootstrap, prefix(), KAFKA_REPLICATION_FACTOR="3")
    assert too_many.returncode != 0 and "KAFKA_REPLICATION_FACTOR" in too_many.stderr
