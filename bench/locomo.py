"""LoCoMo-format conversations, read from a folder by path (the data's licence keeps it out
of this repository): each conversation's turns as memories to import, and its questions
whose evidence turns are annotated (categories 1 to 4; category 5 has no evidence)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
# The sessions' own annotations (observations, summaries, events) are never read.


@dataclass(frozen=True)
class Turn:
    dia_id: str
    speaker: str
    text: str  # "Speaker: what they said" (and the photo they shared, if any)
    said_at: datetime
    session: int


@dataclass(frozen=True)
class Question:
    text: str
    category: int
    evidence: frozenset[str]


@dataclass(frozen=True)
class Conversation:
    name: str
    speakers: tuple[str, str]
    turns: list[Turn]
    questions: list[Question]

    @property
    def last_said(self) -> datetime:
        return max(turn.said_at for turn in self.turns)


def session_time(text: str) -> datetime:
    # "1:56 pm on 8 May, 2023"
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def turn_text(turn: dict[str, str]) -> str:
    text = f"{turn['speaker']}: {turn['text']}"
    if turn.get("blip_caption"):  # what the photo they shared shows: part of the turn
        text += f" [shares a photo: {turn['blip_caption']}]"
    return text


def load_conversation(path: Path) -> Conversation:
    data = json.loads(path.read_text())
    turns: list[Turn] = []
    session = 1
    while f"session_{session}" in data:
        said_at = session_time(data[f"session_{session}_date_time"])
        turns += [Turn(t["dia_id"], t["speaker"], turn_text(t), said_at, session)
                  for t in data[f"session_{session}"]]
        session += 1
    questions = []
    for qa in data.get("qa", []):
        # Some evidence lists hold "D8:6; D9:17" in one string.
        evidence = frozenset(e for item in qa.get("evidence", [])
                             for e in re.split(r"[;,\s]+", str(item)) if e)
        if qa.get("category") in CATEGORIES and evidence:
            questions.append(Question(str(qa["question"]), int(qa["category"]), evidence))
    return Conversation(path.stem, (data["speaker_a"], data["speaker_b"]), turns, questions)


def load_folder(folder: Path) -> list[Conversation]:
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no LoCoMo conversations (*.json) in {folder}")
    return [load_conversation(path) for path in files]


def context_key(turns: list[Turn], i: int, before: int = 2) -> str:
    """The turn with up to `before` turns said just before it in the same session: what a
    search matches it by. A reply ("Yes, last year!") means what it answers."""
    start = i
    while start > 0 and i - start < before and turns[start - 1].session == turns[i].session:
        start -= 1
    return "\n".join(turn.text for turn in turns[start:i + 1])
