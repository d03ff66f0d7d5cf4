from campaign_api.bootstrap import background, create_app
from campaign_api.settings import Settings
from servicekit.process import run_service


def main() -> None:
    settings = Settings()
    run_service("campaign-api", settings, create_app, settings.gateway_port, background)


if __name__ == "__main__":
    main()
