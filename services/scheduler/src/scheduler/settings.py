from servicekit.settings import CommonSettings


class Settings(CommonSettings):
    http_port: int = 8083
    due_batch_size: int = 2000
    due_poll_seconds: float = 0.2
    due_workers: int = 2
    batch_concurrency: int = 3
