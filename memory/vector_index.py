"""The FAISS index a user's vectors live in, and how it is searched.

Small users get exact inner product over unit vectors (= cosine). Past a size a search
would read every float, so the index becomes compact and two-stage: 4-bit product codes of
two dimensions each, scanned with SIMD table look-ups (`IndexPQFastScan`), pick
`K_FACTOR` times the wanted neighbours, which half-precision copies then rerank
(`IndexRefine`). Both stages still look at every memory, so what it finds does not depend
on how the vectors cluster: a graph index (HNSW) needs clustered data to find the nearest,
and misses most of them on the bench's random vectors (docs/memory-engines.md).

The compact index cannot remove a vector (faiss implements no `remove_ids` for fast-scan
codes), so a deleted memory's vector stays in it as a tombstone: searches skip keys that
have no record and ask for more neighbours in proportion, and the index is rebuilt without
them (`without`) once they pass `REBUILD_SHARE` of it.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import faiss
import numpy as np

K_FACTOR = 5  # first-stage candidates per neighbour wanted
REBUILD_SHARE = 0.2  # of the index's vectors: more tombstones than that and it is rebuilt
TRAIN_AT_MOST = 4_096  # vectors the product codes learn from
TRAIN_AT_LEAST = 16  # the product codes' centroids per sub-space: fewer cannot train


def new_index(dim: int) -> Any:
    """Exact inner-product search over unit vectors (= cosine), with stable ids."""
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _inner(index: Any) -> Any:
    return faiss.downcast_index(index.index)


def is_exact(index: Any) -> bool:
    return isinstance(_inner(index), faiss.IndexFlat)


def is_compact(index: Any) -> bool:
    return isinstance(_inner(index), faiss.IndexRefine)


def kind(index: Any) -> str:
    """What the bench reports of an index."""
    if is_exact(index):
        return "exact"
    return "fast-scan + fp16 rerank" if is_compact(index) else "8-bit"


def ids(index: Any) -> np.ndarray:
    return faiss.vector_to_array(index.id_map).astype(np.int64)


def compact(index: Any) -> Any:
    """The same vectors and ids in the compact two-stage index. The rerank keeps the
    vectors in half precision, not 8 bits: the 8-bit codes' rounding, not the first stage,
    was what kept the old index from the exact top 4; half precision ranks as float32 does
    at half its size."""
    inner = _inner(index)
    vectors = inner.reconstruct_n(0, inner.ntotal)
    dim = inner.d
    codes = faiss.IndexPQFastScan(dim, dim // 2 if dim % 2 == 0 else dim, 4,
                                  faiss.METRIC_INNER_PRODUCT)
    rerank = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16,
                                        faiss.METRIC_INNER_PRODUCT)
    rerank.train(vectors)
    sample = vectors
    if len(vectors) > TRAIN_AT_MOST:
        sample = vectors[np.random.default_rng(0).choice(len(vectors), TRAIN_AT_MOST,
                                                          replace=False)]
    codes.train(sample)
    two_stage = faiss.IndexRefine(codes, rerank)
    two_stage.k_factor = K_FACTOR
    result = faiss.IndexIDMap2(two_stage)
    result.add_with_ids(vectors, ids(index))
    return result


def removable(index: Any) -> bool:
    return not is_compact(index)


def tombstones(index: Any, live: Container[int]) -> int:
    """How many of the index's vectors belong to no memory any more."""
    if index is None or removable(index):
        return 0
    return sum(1 for key in ids(index).tolist() if key not in live)


def too_dead(index: Any, dead: int) -> bool:
    return index is not None and dead > REBUILD_SHARE * index.ntotal


def without(index: Any, live: Container[int]) -> Any:
    """The compact index rebuilt with only the vectors of live keys, from its half-precision
    copies (which re-encode to themselves) and with its trained product codes (a copy,
    emptied): a rebuild loses nothing the first compaction did not."""
    inner = _inner(index)
    keys = ids(index)
    keep = np.fromiter((key in live for key in keys.tolist()), bool, len(keys))
    vectors = inner.reconstruct_n(0, inner.ntotal)[keep]
    fresh = faiss.clone_index(inner)
    fresh.reset()
    result = faiss.IndexIDMap2(fresh)
    result.add_with_ids(vectors, keys[keep])
    return result


def nearest(index: Any, vector: np.ndarray, want: int, live: Container[int], dead: int
            ) -> list[tuple[int, float]]:
    """Up to `want` (key, cosine) pairs of live keys, best first. With tombstones it asks
    for more in proportion, and for twice as many again while tombstones crowd the
    answer (deleted memories may well be near each other, and near the question)."""
    total = index.ntotal
    ask = min(total, want if not dead else want * total // max(1, total - dead) + 8)
    while True:
        scores, keys = index.search(vector, ask)
        # (Python numbers first: no numpy scalar made per element)
        found = [(key, score) for score, key in zip(scores[0].tolist(), keys[0].tolist(),
                                                    strict=True)
                 if key != -1 and key in live]
        if len(found) >= want or ask >= total:
            return found[:want]
        ask = min(total, ask * 2)
