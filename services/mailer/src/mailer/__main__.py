from mailer.bootstrap import SERVICE
from mailer.settings import Settings
from servicekit.process import run_service


def main() -> None:
    settings = Settings()
    run_service(SERVICE, settings, settings.http_port)


if __name__ == "__main__":
    main()
