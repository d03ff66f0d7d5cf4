import asyncio

from servicekit.logging import configure_logging
from servicekit.process import serve

from segment_svc.bootstrap import background, create_app
from segment_svc.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging("segment-svc", settings.log_level)
    app = create_app(settings)
    asyncio.run(serve(app, settings.http_host, settings.http_port, background(app, settings)))


if __name__ == "__main__":
    main()
