"""The reports tool: a report over the calling user's own conversations (activity per day,
tools used, top topics) as Markdown, with a PNG chart and a CSV that only they can fetch.

The user comes from the run's configuration, which is not among the tool's arguments, so a
model can never ask for someone else's report. The data comes through a `HistoryReader`
the platform passes in, so this module knows nothing of the history service.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from tools.context import ToolContext


@dataclass(frozen=True)
class HistoryRow:
    thread_id: str
    role: str
    content: str
    name: str | None
    created_at: datetime


class HistoryReader(Protocol):
    async def rows(self, user_id: str, since: datetime) -> Sequence[HistoryRow]: ...


class ReportArgs(BaseModel):
    period_days: int = Field(default=30, ge=1, le=365,
                             description="How many days back the report covers.")


_STOPWORD_TEXT = """a about above after again all am an and any are as at be because been
before being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers him his how i if in into is it its itself
just me more most my no nor not now of off on once only or other our out over own please
same she should so some such than that the their them then there these they this those
through to too under until up very was we were what when where which while who whom why
will with would you your yours tell give show make get what's it's i'm can't don't"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def user_dir(root: Path, user_id: str) -> Path:
    """Reports live under a folder named by a hash of their owner: nothing else can ask."""
    return root / hashlib.sha256(user_id.encode()).hexdigest()[:32]


def top_topics(texts: Sequence[str], n: int = 8) -> list[tuple[str, int]]:
    words = Counter(w for text in texts for w in re.findall(r"[a-zA-ZÀ-ÿ']{3,}", text.lower())
                    if w not in _STOPWORDS)
    return words.most_common(n)


def build_report(rows: Sequence[HistoryRow], *, period_days: int, today: date
                 ) -> dict[str, Any]:
    days = [today - timedelta(days=i) for i in range(period_days - 1, -1, -1)]
    per_day = {d: {"user": 0, "assistant": 0} for d in days}
    for row in rows:
        day = row.created_at.date()
        if day in per_day and row.role in ("user", "assistant"):
            per_day[day][row.role] += 1
    tools = Counter(row.name or "unknown" for row in rows if row.role == "tool")
    return {
        "per_day": per_day,
        "tools": tools.most_common(),
        "topics": top_topics([r.content for r in rows if r.role == "user"]),
        "threads": len({r.thread_id for r in rows}),
        "messages": sum(v["user"] + v["assistant"] for v in per_day.values()),
    }


def write_chart(report: dict[str, Any], path: Path, period_days: int) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display here, and no GUI toolkit in a server
    from matplotlib import pyplot as plt

    days = list(report["per_day"])
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    ax.bar(days, [report["per_day"][d]["user"] for d in days], label="your messages",
           color="#1d3557")
    ax.bar(days, [report["per_day"][d]["assistant"] for d in days],
           bottom=[report["per_day"][d]["user"] for d in days], label="answers",
           color="#a8dadc")
    ax.set_title(f"Messages per day, last {period_days} days")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def write_csv(report: dict[str, Any], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["date", "your_messages", "answers"])
    for day, counts in report["per_day"].items():
        writer.writerow([day.isoformat(), counts["user"], counts["assistant"]])
    path.write_text(buffer.getvalue())


def render_markdown(report: dict[str, Any], *, period_days: int, chart_url: str,
                    csv_url: str) -> str:
    active = [(d, c) for d, c in report["per_day"].items() if c["user"] or c["assistant"]]
    lines = [f"## Your Parley activity, last {period_days} days", "",
             f"- {report['messages']} messages in {report['threads']} conversations, "
             f"on {len(active)} active days",
             f"- Chart: {chart_url}", f"- Data (CSV): {csv_url}", ""]
    if report["tools"]:
        lines += ["| tool | calls |", "|---|---|"]
        lines += [f"| {name} | {count} |" for name, count in report["tools"]]
        lines.append("")
    if report["topics"]:
        lines.append("Top topics: " + ", ".join(f"{w} ({n})" for w, n in report["topics"]))
    if not report["messages"]:
        lines.append("No messages in this period yet.")
    return "\n".join(lines)


def reports_tools(ctx: ToolContext) -> list[BaseTool]:
    reader: HistoryReader | None = ctx.services.get("history")
    root = ctx.option("reports_dir")
    if reader is None or root is None:
        return []  # no history to report on in this deployment
    base_url = str(ctx.option("reports_url", "/reports"))

    async def usage_report(config: RunnableConfig, period_days: int = 30) -> str:
        # LangChain passes the run's config to a parameter typed RunnableConfig; it is not
        # in the argument schema, so the model cannot set it.
        user_id = (config.get("configurable") or {}).get("user_id")
        if not user_id:
            raise ToolException("no signed-in user: reports are about the caller's own data")
        today = datetime.now(UTC).date()
        since = datetime.combine(today - timedelta(days=period_days - 1), datetime.min.time())
        rows = await reader.rows(str(user_id), since)
        report = build_report(rows, period_days=period_days, today=today)
        report_id = uuid.uuid4().hex
        folder = user_dir(Path(root), str(user_id))
        folder.mkdir(parents=True, exist_ok=True)
        write_chart(report, folder / f"{report_id}.png", period_days)
        write_csv(report, folder / f"{report_id}.csv")
        return render_markdown(report, period_days=period_days,
                               chart_url=f"{base_url}/{report_id}.png",
                               csv_url=f"{base_url}/{report_id}.csv")

    return [StructuredTool.from_function(
        coroutine=usage_report, name="usage_report", args_schema=ReportArgs,
        description="A report with a chart of the user's own activity on Parley: messages "
                    "per day, tools used and top topics over the last N days.",
        handle_tool_error=True,
        metadata={"examples": ["show my usage statistics", "how many chats did I have in May",
                               "chart of my activity on Parley", "which tools did I use",
                               "report on my conversations", "my message count per day"]})]
