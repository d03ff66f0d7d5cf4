from segment_svc.bootstrap import background, create_app
from segment_svc.settings import Settings
from servicekit.process import run_service


def main() -> None:
    settings = Settings()
    run_service("segment-svc", settings, create_app, settings.http_port, background)


if __name__ == "__main__":
    main()
