"""Every line a service writes is one JSON object, the standard library's too."""

import json
import logging

import structlog

from servicekit.logging import configure_logging


def lines(captured: str) -> list[dict]:
    return [json.loads(line) for line in captured.splitlines() if line.strip()]


def test_the_standard_librarys_records_and_exceptions_are_json_lines_like_structlogs(capsys):
    configure_logging("svc", "INFO", console=False)
    try:
        structlog.get_logger().info("ours", n=1)
        logging.getLogger("aiokafka.consumer").warning("heartbeat %s failed", "g1")
        logging.getLogger("aiokafka.consumer").info("chatter")  # below the libraries' level
        try:
            raise KeyError("k")
        except KeyError:
            logging.getLogger("aiohttp.server").exception("handler failed")
            structlog.get_logger().exception("ours_failed")
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
        logging.getLogger().handlers = []
    ours, theirs, failed, our_failure = lines(capsys.readouterr().err)
    assert ours["event"] == "ours" and ours["service"] == "svc" and ours["level"] == "info"
    assert theirs == {**theirs, "event": "heartbeat g1 failed", "logger": "aiokafka.consumer", "level": "warning",
                      "service": "svc"}
    assert "timestamp" in theirs
    for record in (failed, our_failure):
        assert record["exception"][0]["exc_type"] == "KeyError"
        assert record["exception"][0]["frames"]
        assert all("locals" not in frame for frame in record["exception"][0]["frames"])
