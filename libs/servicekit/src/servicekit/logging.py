"""The one logging configuration: structlog's events and the standard library's records
(aiokafka, aiohttp, asyncpg) through the same processors, as JSON lines, or a console
renderer on a terminal. Exceptions are structured fields (`exception`: type, message,
frames) in JSON, a readable traceback on a terminal."""

import logging
import sys

import structlog


def configure_logging(service: str, level: str = "INFO", console: bool | None = None) -> None:
    console = sys.stderr.isatty() if console is None else console
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Frames without their locals: a local can hold a password or a recipient's data.
    exceptions = [] if console else [structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=False))]
    renderer = structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    # structlog's own events go straight to stderr (the hot paths log through it): no
    # detour through the standard library's handlers.
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), *exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *exceptions, renderer],
    ))
    root = logging.getLogger()
    root.handlers = [handler]
    # Libraries say a great deal at INFO (every rebalance, every connection): their
    # warnings and errors are kept, or everything when LOG_LEVEL asks for DEBUG.
    root.setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)
