from pydantic import Field

from servicekit.settings import CommonSettings


class Settings(CommonSettings):
    gateway_port: int = 8080
    segment_svc_url: str = "http://127.0.0.1:8081"
    flow_engine_url: str = "http://127.0.0.1:8082"
    api_keys: str = Field(default="", description="comma-separated keys; empty leaves the API open (development)")
    public_base_url: str = "http://127.0.0.1:8080"
    tracking_secret: str = "change-me"
    upstream_timeout_seconds: float = 30.0
