"""The loop guard on answers as they stream, piece by piece."""

from __future__ import annotations

from agents.loop_guard import LoopGuard


def fed(text: str, piece: int = 3) -> LoopGuard:
    guard = LoopGuard()
    for start in range(0, len(text), piece):
        if guard.feed(text[start:start + piece]):
            break
    return guard


def test_the_loop_of_the_issue_is_caught_at_its_third_lap() -> None:
    loop = "".join(f"Translate this into {lang}:\nA: Ada\n"
                   for lang in ("Portuguese", "Italian", "French", "German", "Spanish"))
    guard = fed(loop)
    assert guard.reason is not None and "'A: Ada'" in guard.reason
    assert guard.text.count("A: Ada") == 3  # cut there, not at the length cap


def test_a_run_of_words_said_three_times_is_caught() -> None:
    guard = fed("1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1")
    assert guard.reason is not None and "1 1 1 1 1 1" in guard.reason
    assert fed("the sea is calm and the sea is calm and the sea is calm and the sea").reason


def test_ordinary_answers_pass() -> None:
    answers = [
        "Your name is Ada, and you live in Porto.",
        "Here are three ideas:\n- walk by the river\n- visit a museum\n- cook dinner\n",
        "Bonjour, mon ami.\n\nIn French, 'good morning, my friend' is 'Bonjour, mon ami'.",
        "1. Preheat the oven.\n2. Mix the flour and eggs.\n3. Bake for 20 minutes.\n\n"
        "Enjoy!\n\n---\n\n---\n\n---\n",  # short separators repeat and do not count
    ]
    for answer in answers:
        assert fed(answer).reason is None, answer


def test_a_line_still_being_written_is_not_judged_yet() -> None:
    guard = LoopGuard()
    for piece in ("A: Ada\n", "A: Ada\n", "A: Ad"):
        assert not guard.feed(piece)
    assert guard.feed("a\n")
