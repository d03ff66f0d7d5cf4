from pydantic import Field

from servicekit.settings import CommonSettings


class Settings(CommonSettings):
    http_port: int = 8083
    due_batch_size: int = 2000
    due_poll_seconds: float = 0.2
    due_workers: int = 2
    # Sends emitted and not yet answered, at most: about two seconds of the mailers' pace
    # (bench/fairness.py), so that send.due never holds a whole campaign and a campaign
    # started during a large one goes out within seconds. Shared fairly between the running
    # campaigns. Too small starves fast mailers: it must exceed their pace times the round
    # trip (send.due to the answer applied, ~0.5 s here).
    due_window: int = Field(default=2000, ge=1)
    answer_timeout_seconds: float = Field(default=60.0, gt=0, description="after which an unanswered send is emitted again")
    batch_concurrency: int = 3
