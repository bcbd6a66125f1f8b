import datetime as dt

import pytest

from core.base.errors import PolicyError
from core.config.schedule import BR_SCHEDULE, in_force
from core.issuance.validity import check_days, not_after_for

UTC = dt.UTC


@pytest.mark.parametrize(
    ("at", "max_days", "dcv_days"),
    [
        (dt.datetime(2026, 3, 14, 23, 59, 59, tzinfo=UTC), 398, 398),
        (dt.datetime(2026, 3, 15, 0, 0, 0, tzinfo=UTC), 200, 200),
        (dt.datetime(2027, 3, 14, 23, 59, 59, tzinfo=UTC), 200, 200),
        (dt.datetime(2027, 3, 15, 0, 0, 0, tzinfo=UTC), 100, 100),
        (dt.datetime(2029, 3, 14, 12, 0, 0, tzinfo=UTC), 100, 100),
        (dt.datetime(2029, 3, 15, 0, 0, 0, tzinfo=UTC), 47, 10),
        (dt.datetime(2035, 1, 1, tzinfo=UTC), 47, 10),
    ],
)
def test_rule_in_force_around_each_cut_over(at: dt.datetime, max_days: int, dcv_days: int) -> None:
    rule = in_force(BR_SCHEDULE, at)
    assert (rule.max_days, rule.dcv_reuse_days) == (max_days, dcv_days)
    check_days(BR_SCHEDULE, at, max_days)
    with pytest.raises(PolicyError) as info:
        check_days(BR_SCHEDULE, at, max_days + 1)
    assert info.value.code == "validity_too_long"


def test_validity_counts_both_ends() -> None:
    start = dt.datetime(2026, 4, 1, tzinfo=UTC)
    end = not_after_for(start, 200)
    assert end - start + dt.timedelta(seconds=1) == dt.timedelta(days=200)


def test_before_the_schedule() -> None:
    with pytest.raises(PolicyError):
        in_force(BR_SCHEDULE, dt.datetime(2010, 1, 1, tzinfo=UTC))
