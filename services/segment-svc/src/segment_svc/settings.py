from servicekit.settings import CommonSettings


class Settings(CommonSettings):
    http_port: int = 8081
    evaluation_batch_size: int = 1000
