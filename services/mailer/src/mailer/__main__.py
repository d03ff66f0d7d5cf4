from mailer.bootstrap import background, create_app
from mailer.settings import Settings
from servicekit.process import run_service


def main() -> None:
    settings = Settings()
    run_service("mailer", settings, create_app, settings.http_port, background)


if __name__ == "__main__":
    main()
