from servicekit.settings import CommonSettings


class Settings(CommonSettings):
    http_port: int = 8082
