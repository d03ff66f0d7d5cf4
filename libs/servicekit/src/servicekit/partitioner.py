"""Which partition a keyed message goes to: Kafka's own choice (the Java client's murmur2
of the key), as aiokafka's DefaultPartitioner makes it, in a third of its time.

aiokafka hashes byte by byte in Python, 4 µs a 36-byte key; the scheduler keys every
send.due by its contact, so that was 6% of its CPU. Here the key is read four bytes at a
time by one struct call. The partition must stay the Java client's: a key's events stay
in one partition, in order, whoever produces them. A unit test holds the two to the same
partition for thousands of keys."""

import random
import struct
from functools import lru_cache

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


@lru_cache(maxsize=64)
def _words(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}I")


def murmur2(data: bytes) -> int:
    """org.apache.kafka.common.utils.Utils.murmur2, as an unsigned 32-bit value."""
    length = len(data)
    h = 0x9747B28C ^ length
    whole = length & ~3
    for k in _words(length >> 2).unpack_from(data):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra == 3:
        h ^= data[whole + 2] << 16
    if extra >= 2:
        h ^= data[whole + 1] << 8
    if extra:
        h = ((h ^ data[whole]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


def partition_of(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's `partitioner` callable: a key's partition, a random one without a key."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
