"""The mailer's SMTP adapter alone: N emails through its pool to Postfix's smtp-sink.

    uv run python bench/smtp.py [--emails 20000] [--chunk 50] [--partitions 6]

Sends as the mailer does: chunks of `--chunk` side by side, `--partitions` chunks at a
time, over SMTP_CONNECTIONS (16) connections. Reports emails/s, this process's CPU per
email, and the writes per email (one with PIPELINING, the message carried by the next
transaction's write; two before). No Kafka, no PostgreSQL: what the adapter costs.
"""

import argparse
import asyncio
import socket
import sys
import time
from pathlib import Path

# bench/ goes last: its mailer.py is not the mailer package.
sys.path = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent))

from support import SmtpSink, report  # noqa: E402

from mailer.adapters import pipeline  # noqa: E402
from mailer.adapters.smtp import SmtpPool  # noqa: E402
from mailer.settings import Settings  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

MESSAGE = b"Subject: hello\r\nFrom: news@example.com\r\nTo: someone@example.com\r\n\r\n" + b"A line of text.\r\n" * 60


async def main(emails: int, chunk: int, partitions: int) -> None:
    port = free_port()
    sink = SmtpSink(port)
    await _listening(port)
    settings = Settings(smtp_port=port, tracking_secret="bench-tracking-secret")
    pool = SmtpPool(settings)
    writes = 0
    write = pipeline.Replies.write

    def counted(replies: pipeline.Replies, data: bytes) -> None:
        nonlocal writes
        writes += 1
        write(replies, data)

    pipeline.Replies.write = counted

    async def one(n: int) -> int | None:
        async with pool.connection() as connection:
            return (await connection.send(MESSAGE, "news@example.com", f"r{n}@example.com")).code

    async def partition(first: int) -> list[int | None]:
        codes = []
        for start in range(first * chunk, emails, chunk * partitions):
            codes += await asyncio.gather(*(one(n) for n in range(start, min(start + chunk, emails))))
        return codes

    await asyncio.gather(*(one(n) for n in range(settings.smtp_connections)))  # the sessions opened
    writes, started, cpu = 0, time.monotonic(), time.process_time()
    codes = [code for codes in await asyncio.gather(*(partition(p) for p in range(partitions))) for code in codes]
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    await pool.close()
    counted_by_sink = sink.stop()
    report("smtp", {
        "emails": emails, "chunk": chunk, "partitions": partitions, "connections": settings.smtp_connections,
        "emails_per_second": round(emails / elapsed), "cpu_us_per_email": round(cpu * 1e6 / emails, 1),
        "writes_per_email": round(writes / emails, 2), "accepted": codes.count(250),
        "received_by_sink": counted_by_sink, "expected_at_sink": emails + settings.smtp_connections,
    })


async def _listening(port: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emails", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--partitions", type=int, default=6)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.emails, arguments.chunk, arguments.partitions))
