"""`changes SOURCE [ACCOUNT] [7d]`: 1 to 90 days, and a wrong length said as one, not taken for an account."""

from __future__ import annotations

import pytest

from handlers.slack.parse import UsageError, WhatChanged, parse_command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("changes sales-adls", WhatChanged("sales-adls")),
        ("changes sales-adls 7d", WhatChanged("sales-adls", None, 7)),
        ("changes sales-adls contoso-pv 90D", WhatChanged("sales-adls", "contoso-pv", 90)),
        ("changes sales-adls 1d", WhatChanged("sales-adls", None, 1)),
    ],
)
def test_a_source_an_account_and_a_length(text: str, expected: WhatChanged) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("changes sales-adls 0d", "1 to 90 days"),
        ("changes sales-adls 91d", "1 to 90 days"),
        ("changes sales-adls contoso-pv 365d", "1 to 90 days"),
        ("changes sales-adls 1000d", "is not a number of days"),
        ("changes sales-adls 30", "is not a number of days"),
        ("changes sales-adls 2w", "is not a number of days"),
        ("changes sales-adls contoso-pv 7days", "is not a number of days"),
        ("changes", "needs a SOURCE"),
        ("changes 7d", "needs a SOURCE"),
        ("changes a b c", "too many words after `changes`"),
        ("changes sales-adls --days 7", "takes no option"),
    ],
)
def test_a_wrong_length_or_shape_is_said_plainly(text: str, said: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_command(text)
    assert said in str(caught.value)
