"""What the benchmarks share: real servers, a fresh database and topics, a service process
to measure, its peak RSS, and writing the figures."""

import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from servicekit.kafka import EventPublisher, Topics, make_producer
from servicekit.topics import ensure_topics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.support
from tests.support.kafka import message_count  # noqa: E402, F401 (for the benchmarks)
from tests.support.servers import KAFKA_BOOTSTRAP, POSTGRES_URL, create_database, drop_database, start_local  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def servers() -> tuple[str, str]:
    """DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS from the env, else the `test` instance."""
    if "DATABASE_URL" in os.environ and "KAFKA_BOOTSTRAP_SERVERS" in os.environ:
        return os.environ["DATABASE_URL"], os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    start_local("postgres.sh")
    start_local("kafka.sh")
    return POSTGRES_URL, KAFKA_BOOTSTRAP


async def fresh_topics(bootstrap: str) -> str:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix)
    return prefix


class Service:
    """A service process whose peak resident memory is sampled while it runs."""

    def __init__(self, module: str, env: dict[str, str], log: Path) -> None:
        self._log = open(log, "wb")
        # BENCH_PROFILE=FILE runs the service under pyinstrument (uv pip install pyinstrument).
        profile = ["-m", "pyinstrument", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
        self.process = subprocess.Popen([sys.executable, *profile, "-m", module], env={**os.environ, **env},
                                        stdout=self._log, stderr=subprocess.STDOUT)
        self.peak_rss_mb = 0.0
        self._sampling = True
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        status = Path(f"/proc/{self.process.pid}/status")
        while self._sampling and self.process.poll() is None:
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self._sampling = False
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


class SmtpSink:
    """Postfix's smtp-sink on a port of its own (deploy/smtp-sink.sh installs it). Its
    running counter goes to a file: a pipe nobody reads would fill and stall it."""

    def __init__(self, port: int) -> None:
        self._counter = Path(f"/tmp/bench-smtp-sink-{port}.out")
        with self._counter.open("w") as output:
            self._process = subprocess.Popen([str(ROOT / "deploy" / "smtp-sink.sh"), str(port)],
                                             stdout=output, stderr=subprocess.STDOUT)

    def stop(self) -> int | None:
        """Stops the sink; returns how many messages it took, as it counted them."""
        self._process.terminate()
        self._process.wait(timeout=10)
        counts = re.findall(r"mesg=(\d+)", self._counter.read_text(errors="replace"))
        return int(counts[-1]) if counts else None


@asynccontextmanager
async def running(module: str, table: str, admin_url: str, bootstrap: str, prefix: str, **env: str):
    """The service as a process on a database of its own and the bench's topics, a
    publisher on those topics, and a connection to the database; yields them once `table`
    exists (migrated). The database is dropped at the end (a million contacts are
    gigabytes) unless BENCH_KEEP_DATABASE=1, for looking at plans afterwards."""
    database_url = await create_database(admin_url, prefix="bench")
    service = Service(module, {"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                               "KAFKA_TOPIC_PREFIX": prefix, "HTTP_PORT": "0", "LOG_LEVEL": "WARNING",
                               "TRACKING_SECRET": "bench-tracking-secret", **env},
                      Path(f"/tmp/bench-{module}.log"))
    producer = make_producer(bootstrap)
    await producer.start()
    db = await asyncpg.connect(database_url)
    try:
        await until(lambda: db.fetchval("SELECT to_regclass($1) IS NOT NULL", table), f"{table} migrated", 60)
        yield service, EventPublisher(producer, Topics(prefix)), db
    finally:
        await db.close()
        await producer.stop()
        service.stop()
        if os.environ.get("BENCH_KEEP_DATABASE") == "1":
            print(f"kept {database_url}", flush=True)
        else:
            await drop_database(admin_url, database_url)


async def until(check, what: str, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(every)
    raise SystemExit(f"gave up after {timeout:.0f}s waiting for: {what}")


def cpu_seconds_of(command: str) -> float:
    """User + system CPU time used so far by the live processes named `command` (e.g.
    postgres, java): where the rest of the machine's time goes."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        name, rest = text.split(" (", 1)[1].rsplit(")", 1)
        if name == command:
            fields = rest.split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy() -> tuple[float, float]:
    """Seconds the whole machine's cores have been busy, and stolen by the hypervisor."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gb": round(os.sysconf("SC_PAGE_SIZE")
            * os.sysconf("SC_PHYS_PAGES") / 2**30, 1), "python": platform.python_version()}


def report(name: str, figures: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    figures = {"benchmark": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), **figures}
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
