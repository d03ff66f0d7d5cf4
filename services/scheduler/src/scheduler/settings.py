from pydantic import Field

from servicekit.settings import CommonSettings


class Settings(CommonSettings):
    http_port: int = 8083
    due_batch_size: int = 2000
    due_poll_seconds: float = 0.2
    due_workers: int = 2
    # Sends emitted and not yet answered, at most: a few seconds of the mailers' pace, so
    # that send.due never holds a whole campaign and a pause or a new campaign takes
    # effect at once. Shared fairly between the running campaigns.
    due_window: int = Field(default=3000, ge=1)
    answer_timeout_seconds: float = Field(default=60.0, gt=0, description="after which an unanswered send is emitted again")
    batch_concurrency: int = 3
