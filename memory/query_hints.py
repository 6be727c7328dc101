"""What a question says about who and when: the people it names (among the speakers the
user's memories record) and the stretch of time it points at ("in May", "last week",
"in 2022", "yesterday", "three days ago"). Search boosts memories that match, so a question
about Caroline finds what Caroline said, and "what did I cook last week" finds last week's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MONTHS = {name: i + 1 for i, name in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august",
     "september", "october", "november", "december"])}
MONTHS.update({name[:3]: n for name, n in list(MONTHS.items()) if name != "may"})
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
            "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
_AGO = re.compile(r"\b(\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten)\s+"
                  r"(day|week|month|year)s?\s+ago\b")
_YEAR = re.compile(r"\b(19\d\d|20\d\d)\b")
# "may" is a month only where a date is meant: "in May", "May 2023", "8 May".
_MONTH = re.compile(r"\b(?:in|during|since|of|on|early|late|mid|last|this)\s+(" +
                    "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\b|\b(" +
                    "|".join(m for m in MONTHS if m != "may") + r")\b|\b(may)\s+(?:\d)|"
                    r"\b\d{1,2}\s+(may)\b", re.IGNORECASE)


@dataclass(frozen=True)
class TimeWindow:
    start: datetime | None = None  # inclusive; None: open
    end: datetime | None = None  # exclusive
    month: int | None = None  # any year's month, when the question names no year

    def contains(self, when: datetime) -> bool:
        if self.month is not None and when.month != self.month:
            return False
        if self.start is not None and when < self.start:
            return False
        return self.end is None or when < self.end


@dataclass(frozen=True)
class QueryHints:
    speakers: frozenset[str] = frozenset()  # lower-cased names the question mentions
    window: TimeWindow | None = None

    def __bool__(self) -> bool:
        return bool(self.speakers) or self.window is not None


def _day(when: datetime) -> datetime:
    return when.replace(hour=0, minute=0, second=0, microsecond=0)


def time_window(question: str, now: datetime) -> TimeWindow | None:
    text = question.lower()
    today = _day(now)
    if re.search(r"\byesterday\b", text):
        return TimeWindow(today - timedelta(days=1), today)
    if re.search(r"\btoday\b", text):
        return TimeWindow(today, today + timedelta(days=1))
    match = re.search(r"\blast\s+(week|month|year)\b", text)
    if match:
        days = _UNIT_DAYS[match.group(1)]
        # Generous: "last week" may be said of anything from one to two weeks back.
        return TimeWindow(today - timedelta(days=2 * days), today + timedelta(days=1))
    match = re.search(r"\bthis\s+(week|month|year)\b", text)
    if match:
        return TimeWindow(today - timedelta(days=_UNIT_DAYS[match.group(1)]),
                          today + timedelta(days=1))
    match = _AGO.search(text)
    if match:
        count = int(match.group(1)) if match.group(1).isdigit() else _NUMBERS[match.group(1)]
        days = count * _UNIT_DAYS[match.group(2)]
        slack = max(1, days // 4)
        return TimeWindow(today - timedelta(days=days + slack),
                          today - timedelta(days=days - slack - 1))
    month_match = _MONTH.search(question)
    month = MONTHS[next(g for g in month_match.groups() if g).lower()] if month_match else None
    year_match = _YEAR.search(text)
    if year_match:
        year = int(year_match.group(1))
        tz = now.tzinfo
        if month:
            start = datetime(year, month, 1, tzinfo=tz)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
            return TimeWindow(start, end)
        return TimeWindow(datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz))
    if month:
        return TimeWindow(month=month)
    return None


def named_speakers(question: str, speakers: Iterable[str]) -> frozenset[str]:
    words = set(re.findall(r"[a-z0-9]+", question.lower()))
    return frozenset(s.lower() for s in speakers
                     if s and set(re.findall(r"[a-z0-9]+", s.lower())) <= words)


def read_hints(question: str, speakers: Iterable[str], now: datetime | None = None
               ) -> QueryHints:
    now = now or datetime.now(UTC)
    if now.tzinfo is None:  # memories' times are aware (UTC): compare like with like
        now = now.replace(tzinfo=UTC)
    return QueryHints(named_speakers(question, speakers), time_window(question, now))
