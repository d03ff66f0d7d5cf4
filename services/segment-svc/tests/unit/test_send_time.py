from datetime import UTC, datetime

import pytest

from segment_svc.send_time import hours_from_utc

WINTER, SUMMER = datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 7, 15, tzinfo=UTC)


@pytest.mark.parametrize(("zone", "at", "hours"), [
    ("UTC", WINTER, 0), ("Asia/Tokyo", WINTER, 9), ("America/New_York", WINTER, -5),
    ("America/New_York", SUMMER, -4), ("Asia/Kolkata", WINTER, 5), ("America/St_Johns", WINTER, -4),
])
def test_a_zone_is_whole_hours_ahead_of_utc_rounded_down(zone, at, hours):
    assert hours_from_utc(zone, at) == hours
