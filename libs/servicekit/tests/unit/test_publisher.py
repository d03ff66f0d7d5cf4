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
        delivered = asyncio.get_running_loop().create_future()
        if self.fails_with is not None:
            delivered.set_exception(self.fails_with)
        else:
            delivered.set_result(None)
        return delivered

    async def stop(self) -> None:
        self.stopped = True


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
