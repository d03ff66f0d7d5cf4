"""The producer's partitioner chooses what the Java client (and aiokafka's own) chooses."""

import random

from aiokafka.partitioner import DefaultPartitioner, murmur2

from servicekit.kafka import make_producer
from servicekit.partitioner import murmur2 as fast_murmur2
from servicekit.partitioner import partition_of


def test_every_key_hashes_as_the_java_clients_murmur2():
    draw = random.Random(13)
    for length in range(0, 90):
        for _ in range(100):
            key = draw.randbytes(length)
            assert fast_murmur2(key) == murmur2(key), key


def test_a_key_goes_to_the_partition_kafka_would_choose_and_no_key_to_one_that_exists():
    draw = random.Random(7)
    for count in (1, 3, 6, 12, 50):
        partitions = list(range(count))
        for _ in range(500):
            key = str(draw.getrandbits(128)).encode()
            assert partition_of(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)
        assert partition_of(None, partitions, []) in partitions
        assert partition_of(None, partitions, [partitions[-1]]) == partitions[-1]
    # Known values of the Java client (kafka-clients' UtilsTest): the hash, not only agreement.
    assert fast_murmur2(b"21") == -973932308 & 0xFFFFFFFF
    assert fast_murmur2(b"foobar") == -790332482 & 0xFFFFFFFF


async def test_producers_use_it():
    assert make_producer("127.0.0.1:9")._partitioner is partition_of  # never started: no broker needed
