"""The words a lexical search matches on: lower case, no stop words, a light English stemmer.

Both memory engines index these same terms (FAISS beside its vectors, Redis in a NOSTEM text
field), so a query matches the same memories in either. The stemmer is deliberately small:
it folds the inflections that separate a question from what was said ("painted" / "paint",
"kids" / "kid", "camping" / "camp") and leaves the rest alone; a full Porter stemmer gained
nothing measurable on the LoCoMo development split.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+")

# English function words and chat filler: they match everything, so they rank nothing.
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can cannot could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just let me more most my myself no nor not now of off on once only or other ought
our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
im ive id ill youre youve youd youll hes shes its were weve theyre theyve thats whats dont
doesnt didnt isnt arent wasnt werent havent hasnt hadnt wont wouldnt cant couldnt shouldnt
oh yeah yes hey hi wow really so also got get gets lot lots thing things much many one
""".split())  # noqa: SIM905 (a block of words reads better)

_DOUBLE = re.compile(r"([bdfgmnprt])\1$")


def stem(word: str) -> str:
    """Strip one inflectional suffix; keep at least three letters of stem."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    for suffix in ("ingly", "edly", "ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            # "running" -> "runn" -> "run"; "painted" -> "paint"
            return base[:-1] if _DOUBLE.search(base) else base
    if (word.endswith("es") and word[-3:-2] in ("s", "x", "z")) or word.endswith(("ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """The text's searchable terms, in order, repeats kept (term frequency counts)."""
    words = _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))
    return [stem(w) for w in words if w not in STOP_WORDS]
