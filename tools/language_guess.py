"""A cheap guess at a text's language from its common words, for the offline translator.

Apertium cannot detect a language and the chat model is not asked when Apertium
translates, so the source is guessed here: the language whose function words ("the",
"el", "le", "der"…) the text uses most. It is a guess and the tool says so. Text with none
of these words (a name, "hello", "cheese") is taken to be English, what users mostly send.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_COMMON: dict[str, frozenset[str]] = {
    "en": _words("the a an and is are was of to in it you i my your this that with for "
                "not on be have do what where how please thank"),
    "es": _words("el la los las un una y es son de del en que por para con no mi tu "
                "está estoy qué dónde cómo gracias hola muy"),
    "fr": _words("le la les un une et est sont de du des en que pour avec ne pas je "
                "tu il mon ton c'est où comment merci bonjour très"),
    "it": _words("il lo la gli le un una e è sono di del della in che per con non mio "
                "sono dove come grazie ciao molto"),
    "pt": _words("o a os as um uma e é são de do da em que por para com não meu você "
                "está onde como obrigado olá muito"),
    "de": _words("der die das ein eine und ist sind von zu in nicht ich du mein mit für "
                "auf wo wie danke hallo sehr"),
}
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def guess_language(text: str, default: str = "en") -> str:
    """An ISO 639-1 code: the best-scoring language, `default` on a tie with it or none."""
    words = [w.lower() for w in _WORD.findall(text)]
    scores = {code: sum(w in common for w in words) for code, common in _COMMON.items()}
    best = max(scores, key=lambda code: scores[code])
    if scores[best] == 0 or scores[best] <= scores.get(default, 0):
        return default
    return best
