"""The Redis engine's lexical side: the Lua scripts that keep each user's BM25 statistics
(memories, total length, document frequency per term; with the speaker and model counts
beside them) in step with the memories, and the rescoring of RediSearch's candidates with
those statistics by the FAISS engine's formula and in its order (memory/lexical.py), so
both engines rank alike."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from redis.commands.search.document import Document

from memory.lexical import bm25, idf

# Adds a memory and counts its terms, unless it is there already (another replica stored
# the same text first): KEYS memory, statistics, speakers, models; ARGV the number of field
# pairs, the pairs, the memory's length in terms, its speaker ("" for none), its model, its
# distinct terms.
ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2, 1 + 2 * n))
redis.call('HINCRBY', KEYS[2], '#docs', 1)
redis.call('HINCRBY', KEYS[2], '#length', tonumber(ARGV[2 + 2 * n]))
local speaker = ARGV[3 + 2 * n]
if speaker ~= '' then redis.call('HINCRBY', KEYS[3], speaker, 1) end
redis.call('HINCRBY', KEYS[4], ARGV[4 + 2 * n], 1)
for i = 5 + 2 * n, #ARGV do redis.call('HINCRBY', KEYS[2], ARGV[i], 1) end
return 1
"""
# Deletes a memory and uncounts its terms: KEYS memory, statistics, speakers, models.
DELETE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local got = redis.call('HMGET', KEYS[1], 'terms', 'speaker', 'model')
local seen, length = {}, 0
for word in string.gmatch(got[1] or '', '%S+') do
  length = length + 1
  if not seen[word] then
    seen[word] = true
    if redis.call('HINCRBY', KEYS[2], word, -1) <= 0 then redis.call('HDEL', KEYS[2], word) end
  end
end
redis.call('HINCRBY', KEYS[2], '#docs', -1)
redis.call('HINCRBY', KEYS[2], '#length', -length)
if got[3] then
  if redis.call('HINCRBY', KEYS[4], got[3], -1) <= 0 then redis.call('HDEL', KEYS[4], got[3]) end
end
local speaker = got[2]
if speaker and speaker ~= '' then
  if redis.call('HINCRBY', KEYS[3], speaker, -1) <= 0 then redis.call('HDEL', KEYS[3], speaker) end
end
redis.call('DEL', KEYS[1])
return 1
"""


def as_text(value: Any) -> str:
    """A field as Redis returned it (bytes, or text from a decoding client)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def lexical_stats(stats: Sequence[Any], wanted: Sequence[str]
                  ) -> tuple[int, float, dict[str, int]]:
    """(memories, average length, document frequency of each wanted term) from HMGET of
    #docs, #length and the wanted terms."""
    n_docs = int(stats[0] or 0)
    average = int(stats[1] or 0) / n_docs if n_docs else 0.0
    return n_docs, average, {t: int(df or 0) for t, df in zip(wanted, stats[2:], strict=True)}


def rescored(docs: Sequence[Document], rare: Sequence[str], common: Sequence[str],
             n_docs: int, average: float, df: Mapping[str, int]
             ) -> list[tuple[Document, float]]:
    """The documents holding a rare term (`rare_first`), best first, scored by BM25 over
    the user's statistics as the FAISS engine scores them: in float32, the rare terms
    added up first and then the common ones, each in the question's order."""
    if not docs or not rare:
        return []
    order = [*rare, *common]
    counts = [Counter(as_text(vars(doc)["terms"]).split()) for doc in docs]  # (returned field)
    tf = np.array([[c.get(t, 0) for t in order] for c in counts], np.float32)
    length = np.array([sum(c.values()) for c in counts], np.float32)
    scores = np.zeros(len(docs), np.float32)
    for column, term in enumerate(order):  # (adding a 0 where a term is absent is exact)
        scores += bm25(tf[:, column], length, average, idf(n_docs, df[term]))
    found = np.flatnonzero((tf[:, :len(rare)] > 0).any(axis=1) & (scores > 0))
    return sorted(((docs[i], float(scores[i])) for i in found.tolist()),
                  key=lambda item: -item[1])
