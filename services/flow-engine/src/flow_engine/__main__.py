import asyncio

from servicekit.logging import configure_logging
from servicekit.process import serve

from flow_engine.bootstrap import create_app
from flow_engine.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging("flow-engine", settings.log_level)
    asyncio.run(serve(create_app(settings), settings.http_host, settings.http_port, lambda stop: []))


if __name__ == "__main__":
    main()
