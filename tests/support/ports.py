import random
import socket


def free_port() -> int:
    """A free port outside the kernel's ephemeral range (32768-60999 here), where the
    outgoing connections of every client (Kafka, PostgreSQL) take theirs: a port picked
    there can be taken again before the service under test binds it."""
    while True:
        port = random.randint(20000, 29999)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
