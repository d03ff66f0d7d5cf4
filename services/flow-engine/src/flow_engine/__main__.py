from flow_engine.bootstrap import create_app
from flow_engine.settings import Settings
from servicekit.process import run_service


def main() -> None:
    settings = Settings()
    run_service("flow-engine", settings, create_app, settings.http_port)


if __name__ == "__main__":
    main()
