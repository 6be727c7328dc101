"""The FAISS index a user's vectors live in, and how it is searched.

Small users get exact inner product over unit vectors (= cosine). Past a size a search
would read every float, so the index becomes compact and two-stage: 4-bit product codes of
two dimensions each, scanned with SIMD table look-ups (`IndexPQFastScan`), pick
`K_FACTOR` times the wanted neighbours, which half-precision copies then rerank
(`IndexRefine`). Both stages still look at every memory, so what it finds does not depend
on how the vectors cluster: a graph index (HNSW) needs clustered data to find the nearest,
and misses most of them on the bench's random vectors (docs/benchmarks.md). A user who
deletes down to half the threshold goes back to exact search (`fitted`): the gap between
the two sizes keeps one delete and one add from converting back and forth.

Both stages can drop vectors (`remove_ids` of fast-scan codes and of flat codes), but the
`IndexRefine` that pairs them cannot, and dropping one vector moves every later code. So a
deleted memory's vector stays as a tombstone: searches skip keys that have no record and
ask for more neighbours in proportion, and once tombstones pass `REBUILD_SHARE` of the
index, `without` drops them from both stages in place, in one pass.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import faiss
import numpy as np

K_FACTOR = 5  # first-stage candidates per neighbour wanted
REBUILD_SHARE = 0.2  # of the index's vectors: more tombstones than that and it is rebuilt
BITS = 4  # per product code: what the fast-scan kernels take
CENTROIDS = 1 << BITS  # per sub-space: fewer vectors than this cannot train the codes
# faiss's k-means would subsample to this many (256 points per centroid) anyway; sampling
# first only saves copying every sub-vector.
TRAIN_AT_MOST = CENTROIDS * 256


def new_index(dim: int) -> Any:
    """Exact inner-product search over unit vectors (= cosine), with stable ids."""
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _inner(index: Any) -> Any:
    return faiss.downcast_index(index.index)


def is_exact(index: Any) -> bool:
    return isinstance(_inner(index), faiss.IndexFlat)


def is_compact(index: Any) -> bool:
    return isinstance(_inner(index), faiss.IndexRefine)


def ids(index: Any) -> np.ndarray:
    return faiss.vector_to_array(index.id_map).astype(np.int64)


def _alive(index: Any, live: Collection[int]) -> np.ndarray:
    """Which of the index's vectors (in storage order) belong to a live key."""
    return np.isin(ids(index), np.fromiter(live, np.int64, len(live)))


def _filled(inner: Any, vectors: np.ndarray, keys: np.ndarray) -> Any:
    result = faiss.IndexIDMap2(inner)
    result.add_with_ids(vectors, keys)
    return result


def compact(index: Any) -> Any:
    """The same vectors and ids in the compact two-stage index. The rerank keeps the
    vectors in half precision: it ranks as float32 does, at half the size."""
    inner = _inner(index)
    vectors = inner.reconstruct_n(0, inner.ntotal)
    dim = inner.d
    # Two dimensions per code is what the fast-scan kernels are fastest at; an odd size
    # (no model here has one) falls back to one sub-space per dimension.
    codes = faiss.IndexPQFastScan(dim, dim // 2 if dim % 2 == 0 else dim, BITS,
                                  faiss.METRIC_INNER_PRODUCT)
    # (half precision needs no training: the quantizer is born trained)
    rerank = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16,
                                        faiss.METRIC_INNER_PRODUCT)
    sample = vectors
    if len(vectors) > TRAIN_AT_MOST:
        sample = vectors[np.random.default_rng(0).choice(len(vectors), TRAIN_AT_MOST,
                                                          replace=False)]
    codes.train(sample)
    two_stage = faiss.IndexRefine(codes, rerank)
    two_stage.k_factor = K_FACTOR
    return _filled(two_stage, vectors, ids(index))


def exact(index: Any, live: Collection[int]) -> Any:
    """An exact index of the live keys' vectors, from the compact index's half-precision
    copies (the full-precision vectors are not kept)."""
    keep = _alive(index, live)
    inner = _inner(index)
    vectors = faiss.downcast_index(inner.refine_index).reconstruct_n(0, inner.ntotal)
    return _filled(faiss.IndexFlatIP(inner.d), vectors[keep], ids(index)[keep])


def fitted(index: Any, live: Collection[int], compact_at: int) -> Any | None:
    """The index converted to the kind its size calls for, or None when it has it: compact
    from `compact_at` vectors, exact again below half that many live ones. An index of
    another kind (the 8-bit one of older versions) is converted either way."""
    if index is None:
        return None
    if is_compact(index):
        return exact(index, live) if len(live) < compact_at // 2 else None
    if index.ntotal >= max(compact_at, CENTROIDS):
        return compact(index)
    if not is_exact(index):
        inner = _inner(index)
        return _filled(faiss.IndexFlatIP(inner.d), inner.reconstruct_n(0, inner.ntotal),
                       ids(index))
    return None


def tombstones(index: Any, live: Collection[int]) -> int:
    """How many of the index's vectors belong to no memory any more."""
    if index is None or not is_compact(index):
        return 0
    return int(index.ntotal - np.count_nonzero(_alive(index, live)))


def unindexed(index: Any, keys: Collection[int]) -> set[int]:
    """The keys that have no vector in the index."""
    if index is None:
        return set()
    wanted = np.fromiter(keys, np.int64, len(keys))
    return set(wanted[~np.isin(wanted, ids(index))].tolist())


def too_dead(index: Any, dead: int) -> bool:
    return index is not None and dead > REBUILD_SHARE * index.ntotal


def without(index: Any, live: Collection[int]) -> None:
    """Drops the tombstones from the compact index, in place: both stages remove the same
    positions and keep the order of the rest, so positions and ids stay aligned, and
    nothing is decoded or encoded again."""
    keep = _alive(index, live)
    positions = np.flatnonzero(~keep).astype(np.int64)
    if not len(positions):
        return
    inner = _inner(index)
    gone = faiss.IDSelectorBatch(positions)  # (IndexRefine's own ids are positions)
    for stage in (inner.base_index, inner.refine_index):
        faiss.downcast_index(stage).remove_ids(gone)
    inner.ntotal = index.ntotal = int(np.count_nonzero(keep))
    faiss.copy_array_to_vector(ids(index)[keep], index.id_map)
    index.construct_rev_map()


def nearest(index: Any, vector: np.ndarray, want: int, live: Collection[int], dead: int
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
