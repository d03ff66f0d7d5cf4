"""What the gateway says of itself, and what it refuses to start with."""

import pytest
from pydantic import ValidationError

from campaign_api.gateway import OPEN_API, health
from campaign_api.settings import Settings

from .fakes import FakeAccounts

SECRET = {"tracking_secret": "a-secret-of-our-own"}


async def test_an_open_api_shows_on_healthz():
    none = FakeAccounts()
    assert await health(Settings(api_keys="", **SECRET), none) == {"api": OPEN_API}
    assert await health(Settings(api_keys=" , ", **SECRET), none) == {"api": OPEN_API}, "blank keys are no keys"


async def test_an_api_with_keys_or_an_account_adds_nothing_to_healthz():
    assert await health(Settings(api_keys="k1, k2", **SECRET), FakeAccounts()) == {}
    accounts = FakeAccounts()
    await accounts.add("ann@example.com", "hash")
    assert await health(Settings(api_keys="", **SECRET), accounts) == {}, "an account closes the API"
    assert Settings(api_keys="k1, k2", **SECRET).keys == ["k1", "k2"]


def test_the_default_tracking_secret_is_refused_outside_development():
    with pytest.raises(ValidationError, match="TRACKING_SECRET"):
        Settings(environment="production")
    assert Settings(environment="development").tracking_secret == "change-me"
