"""The report's arithmetic, from rows as the history service stores them."""

from __future__ import annotations

from datetime import date, datetime

from tools.reports import HistoryRow, build_report, render_markdown, top_topics


def row(day: int, role: str, content: str = "", name: str | None = None,
        thread: str = "t") -> HistoryRow:
    return HistoryRow(thread_id=thread, role=role, content=content, name=name,
                      created_at=datetime(2026, 11, day, 12))


def test_counts_per_day_tools_and_topics() -> None:
    rows = [row(20, "user", "weather in Lisbon and Porto", thread="a"),
            row(20, "assistant"), row(20, "tool", "sunny", "get_weather", "a"),
            row(22, "user", "Lisbon weather again", thread="b"), row(22, "assistant"),
            row(10, "user", "old, outside the period")]
    report = build_report(rows, period_days=7, today=date(2026, 11, 24))
    assert len(report["per_day"]) == 7
    assert report["per_day"][date(2026, 11, 20)] == {"user": 1, "assistant": 1}
    assert report["per_day"][date(2026, 11, 22)] == {"user": 1, "assistant": 1}
    assert report["messages"] == 4
    assert report["tools"] == [("get_weather", 1)]
    assert report["topics"][:2] == [("weather", 2), ("lisbon", 2)]
    text = render_markdown(report, period_days=7, chart_url="/c.png", csv_url="/c.csv")
    assert "4 messages in 3 conversations, on 2 active days" in text
    assert "| get_weather | 1 |" in text and "Chart: /c.png" in text


def test_an_empty_period_says_so() -> None:
    report = build_report([], period_days=3, today=date(2026, 11, 24))
    text = render_markdown(report, period_days=3, chart_url="/c.png", csv_url="/c.csv")
    assert "No messages in this period yet." in text


def test_topics_skip_common_words() -> None:
    assert top_topics(["What is the weather in the Alps?"]) == [("weather", 1), ("alps", 1)]
