import asyncio

from servicekit.logging import configure_logging
from servicekit.process import serve

from campaign_api.bootstrap import background, create_app
from campaign_api.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging("campaign-api", settings.log_level)
    app = create_app(settings)
    asyncio.run(serve(app, settings.http_host, settings.gateway_port, background(app, settings)))


if __name__ == "__main__":
    main()
