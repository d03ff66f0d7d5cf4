from campaign_api.bootstrap import SERVICE
from campaign_api.settings import Settings
from servicekit.process import run_service


def main() -> None:
    settings = Settings()
    run_service(SERVICE, settings, settings.gateway_port)


if __name__ == "__main__":
    main()
