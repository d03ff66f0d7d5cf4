import asyncio

from servicekit.logging import configure_logging
from servicekit.process import serve

from mailer.bootstrap import background, create_app
from mailer.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging("mailer", settings.log_level)
    app = create_app(settings)
    asyncio.run(serve(app, settings.http_host, settings.http_port, background(app, settings)))


if __name__ == "__main__":
    main()
