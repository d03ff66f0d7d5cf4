"""The publisher replaces a producer that aiokafka left out of step with the broker."""

import asyncio

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from contracts.codec import Message
from servicekit.kafka import EventPublisher, Topics


class Producer:
    """Stands in for AIOKafkaProducer: each send's future is failed or resolved as told."""

    def __init__(self, fails_with: Exception | None = None) -> None:
        self.fails_with = fails_with
        self.sent: list[bytes] = []
        self.stopped = False

    async def send(self, topic, value, key, headers) -> asyncio.Future:
        self.sent.append(value)
        return self._delivered()

    async def partitions_for(self, topic) -> set[int]:
        return {0, 1, 2}

    def create_batch(self) -> "Batch":
        return Batch()

    async def send_batch(self, batch, topic, partition) -> asyncio.Future:
        self.sent += batch.values
        return self._delivered()

    def _delivered(self) -> asyncio.Future:
        delivered = asyncio.get_running_loop().create_future()
        if self.fails_with is not None:
            delivered.set_exception(self.fails_with)
        else:
            delivered.set_result(None)
        return delivered

    async def stop(self) -> None:
        self.stopped = True


class Batch:
    """Stands in for aiokafka's BatchBuilder: takes up to three messages."""

    def __init__(self) -> None:
        self.values: list[bytes] = []

    def append(self, key, value, timestamp, headers):
        if len(self.values) == 3:
            return None
        self.values.append(value)
        return object()


MESSAGE = Message("send.due", b"k", b"v", [])


async def test_a_producer_out_of_step_is_replaced_before_the_next_send():
    broken, fresh = Producer(OutOfOrderSequenceNumber()), Producer()

    async def renew():
        return fresh

    publisher = EventPublisher(broken, Topics(), renew=renew)
    with pytest.raises(OutOfOrderSequenceNumber):
        await publisher.send_all([MESSAGE])
    await publisher.send_all([MESSAGE, MESSAGE])
    assert (len(broken.sent), len(fresh.sent), broken.stopped) == (1, 2, True)


async def test_other_failures_keep_the_producer():
    flaky = Producer(TimeoutError())

    async def renew():
        raise AssertionError("not replaced for a timeout")

    publisher = EventPublisher(flaky, Topics(), renew=renew)
    with pytest.raises(TimeoutError):
        await publisher.send_all([MESSAGE])
    flaky.fails_with = None
    await publisher.send_all([MESSAGE])
    assert len(flaky.sent) == 2 and not flaky.stopped


async def test_many_messages_go_as_batches_of_their_partition_in_their_order():
    producer = Producer()
    publisher = EventPublisher(producer, Topics())
    messages = [Message("send.due", f"key-{n % 4}".encode(), f"{n}".encode(), []) for n in range(40)]
    futures = await publisher.send_many(messages)
    assert sorted(producer.sent, key=int) == [m.value for m in messages], "each message once"
    assert len(set(futures)) < len(messages), "a future per batch"
    for key in {m.key for m in messages}:  # a key's messages stay in their order
        values = [m.value for m in messages if m.key == key]
        assert [v for v in producer.sent if v in values] == values
