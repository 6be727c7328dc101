"""Catch an answer going round in circles while it streams. A small model's decoding
settings (repetition penalty, DRY, stop sequences) make loops rare; this catches the rest,
so a degenerate turn is cut at its third lap instead of running to the length cap."""

from __future__ import annotations

import re
from collections import Counter

_WORD = re.compile(r"\w+")


def _line_key(line: str) -> str:
    return " ".join(line.lower().split()).strip(" .,:;!?-*#>")


class LoopGuard:
    """Feed it the answer's pieces as they come; it says True once the answer repeats
    itself: the same line `times` times (lines of 3+ characters), or the same run of
    `ngram` words `times` times."""

    def __init__(self, *, times: int = 3, ngram: int = 6) -> None:
        self.times = times
        self.ngram = ngram
        self.text = ""
        self._lines_seen = 0
        self._lines: Counter[str] = Counter()
        self._words_seen = 0
        self._runs: Counter[tuple[str, ...]] = Counter()
        self.reason: str | None = None

    def feed(self, piece: str) -> bool:
        if self.reason is not None:
            return True
        self.text += piece
        lines = self.text.split("\n")[:-1]  # the last one may still grow
        for line in lines[self._lines_seen:]:
            key = _line_key(line)
            if len(key) >= 3:
                self._lines[key] += 1
                if self._lines[key] >= self.times:
                    self.reason = f"the line {line.strip()[:60]!r} came {self.times} times"
                    return True
        self._lines_seen = len(lines)
        words = _WORD.findall(self.text.lower())[:-1]  # the last word may still grow
        for end in range(max(self._words_seen, self.ngram), len(words) + 1):
            run = tuple(words[end - self.ngram:end])
            self._runs[run] += 1
            if self._runs[run] >= self.times:
                self.reason = f"the words {' '.join(run)!r} came {self.times} times"
                return True
        self._words_seen = max(self._words_seen, len(words) + 1)
        return False
