"""Text a client sends for a turn must be Unicode: JSON can carry an unpaired surrogate
(`"\\ud800"`), which no store can encode. Refused at the door, before anything runs."""

from __future__ import annotations


def unicode_text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"character {exc.start} is an unpaired surrogate, which is not "
                         "Unicode: send valid text") from None
    return value
