"""The Redis engine's lexical side: the Lua scripts that keep each user's BM25 statistics
(memories, total length, document frequency per term; with the speaker and model counts
beside them) in step with the memories, and the rescoring of RediSearch's candidates with
those statistics by the FAISS engine's formula (memory/lexical.py), so both engines rank
alike."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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


def rescored(docs: Sequence[Document], wanted: Sequence[str], stats: Sequence[Any]
             ) -> list[tuple[Document, float]]:
    """The documents sharing a term with the query, best first, scored by BM25 over the
    user's statistics: `stats` is HMGET of #docs, #length and each wanted term."""
    docs_count = int(stats[0] or 0)
    if not docs_count:
        return []
    average = int(stats[1] or 0) / docs_count
    weights = {t: idf(docs_count, int(df or 0)) for t, df in zip(wanted, stats[2:], strict=True)}
    scored: list[tuple[Document, float]] = []
    for doc in docs:
        raw = getattr(doc, "terms")  # noqa: B009 (a field RediSearch returned)
        counts = Counter((raw.decode() if isinstance(raw, bytes) else str(raw)).split())
        length = np.array(sum(counts.values()), np.float32)
        # In float32 and in the query's term order, as the FAISS engine adds them up.
        score = np.zeros((), np.float32)
        for t in wanted:
            if counts.get(t):
                score += bm25(np.array(counts[t], np.float32), length, average, weights[t])
        if score > 0:
            scored.append((doc, float(score)))
    scored.sort(key=lambda item: -item[1])
    return scored
