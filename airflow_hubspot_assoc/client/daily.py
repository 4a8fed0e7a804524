"""HubSpot's daily allowance: stop before it is gone rather than burn the rest of the day in 429s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_hubspot_assoc.client.headers import HEADER_DAILY_REMAINING, header_int
from airflow_hubspot_assoc.exceptions import HubSpotDailyLimitError


class DailyAllowance:
    """What is left of the day's requests: the server's last figure minus our sends since.

    :param reserve: daily requests to leave unused; below it ``check`` raises.
    """

    def __init__(self, reserve: int) -> None:
        self.reserve = reserve
        self.remaining: int | None = None
        self.sends_since = 0
        self.stops = 0

    def check(self) -> None:
        """Raise HubSpotDailyLimitError when only the reserve (or less) is left."""
        if self.remaining is None:
            return
        left = self.remaining - self.sends_since
        if left <= self.reserve:
            self.stops += 1
            raise HubSpotDailyLimitError(
                f"HubSpot's daily request allowance for this app is nearly used up (about {max(0, left)} "
                f"left, reserve {self.reserve}); stopping instead of burning 429s",
                status=429,
                category="DAILY",
            )

    def on_send(self) -> None:
        """One more request of ours counts against the day."""
        self.sends_since += 1

    def on_answer(self, headers: Mapping[str, Any], sent_since: int) -> None:
        """Take the server's figure; ``sent_since``: our sends after the answered one, not in it yet."""
        remaining = header_int(headers, HEADER_DAILY_REMAINING)
        if remaining is not None:
            self.remaining = remaining
            self.sends_since = sent_since
