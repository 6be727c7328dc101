"""`make eval-memory`: recall of Parley's long-term memory on LoCoMo-format conversations.

Each conversation is one user's memory, imported through the public `SemanticMemory.add`
(one memory per turn, with its speaker and the session's time, keyed by the turn and the two
before it), and each question searched through `SemanticMemory.search` as that user, as
the chat's recall does. A question counts as found at k when one of its evidence turns is
among the first k memories. Reported per category (1 multi-hop, 2 temporal, 3 open-domain,
4 single-hop) for the hybrid search beside its dense-only and BM25-only halves in the same
run, for each engine, plus the cost: seconds to add, milliseconds per search, memory per
1,000 memories.

    python -m bench.eval_memory [--data DIR] [--engines faiss,redis] [--keys context|turn]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.locomo import CATEGORIES, Conversation, context_key, load_folder
from memory.fusion import MODES, SearchMode
from memory.semantic import SemanticMemory

REPO = Path(__file__).resolve().parents[1]
# Beside the repository (as /work/shared is beside every worktree), never inside it.
DEFAULT_DATA = REPO.parent / "shared" / "eval" / "locomo-dev"
RESULTS = REPO / "bench" / "results"
KS = (1, 5, 10)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


async def import_conversation(memory: SemanticMemory, conversation: Conversation,
                              keys: str, batch: int = 64) -> dict[str, list[str]]:
    """Adds every turn as one memory of the conversation's user; returns which turns each
    stored text stands for (a line said twice is stored once)."""
    user = f"locomo-{conversation.name}"
    turns = conversation.turns
    stands_for: dict[str, list[str]] = {}
    for start in range(0, len(turns), batch):
        part = range(start, min(start + batch, len(turns)))
        records = await memory.add(
            user, [turns[i].text for i in part],
            [{"speaker": turns[i].speaker, "dia_id": turns[i].dia_id,
              "session": turns[i].session} for i in part],
            keys=[context_key(turns, i) if keys == "context" else turns[i].text for i in part],
            created_at=[turns[i].said_at for i in part])
        for i, record in zip(part, records, strict=True):
            stands_for.setdefault(record.id, []).append(turns[i].dia_id)
    return stands_for


async def evaluate(memory: SemanticMemory, conversations: list[Conversation], *,
                   keys: str = "context", modes: tuple[SearchMode, ...] = MODES
                   ) -> dict[str, Any]:
    """Recall at 1, 5 and 10 per mode and category, and the cost of adding and searching."""
    rss_before = rss_mb()
    started = time.perf_counter()
    stands_for: dict[str, dict[str, list[str]]] = {}
    for conversation in conversations:
        stands_for[conversation.name] = await import_conversation(memory, conversation, keys)
    add_seconds = time.perf_counter() - started
    memories = sum(len(c.turns) for c in conversations)
    found: dict[str, dict[int, Counter[str]]] = {m: {k: Counter() for k in KS} for m in modes}
    asked: Counter[str] = Counter()
    search_ms: list[float] = []
    for conversation in conversations:
        user = f"locomo-{conversation.name}"
        # The questions are asked after the last session: "last week" means before it.
        now = conversation.last_said + timedelta(days=1)
        ids = stands_for[conversation.name]
        for question in conversation.questions:
            category = CATEGORIES[question.category]
            asked[category] += 1
            asked["overall"] += 1
            for mode in modes:
                began = time.perf_counter()
                results = await memory.search(user, question.text, k=max(KS), mode=mode, now=now)
                if mode == "hybrid":
                    search_ms.append((time.perf_counter() - began) * 1000)
                turns = [[d for d in ids.get(m.record.id, [])] for m in results]
                for k in KS:
                    if any(question.evidence.intersection(t) for t in turns[:k]):
                        found[mode][k][category] += 1
                        found[mode][k]["overall"] += 1
    recall = {mode: {group: {f"@{k}": round(found[mode][k][group] / asked[group], 3)
                             for k in KS} for group in ("overall", *CATEGORIES.values())}
              for mode in modes}
    search_ms.sort()
    return {
        "questions": dict(asked), "memories": memories, "keys": keys, "recall": recall,
        "cost": {
            "add_seconds": round(add_seconds, 2),
            "add_seconds_per_1000": round(add_seconds / memories * 1000, 2),
            "search_ms_p50": round(search_ms[len(search_ms) // 2], 3),
            "search_ms_p99": round(search_ms[min(len(search_ms) - 1,
                                                 int(len(search_ms) * 0.99))], 3),
            "rss_mb_per_1000": round((rss_mb() - rss_before) / memories * 1000, 2),
        },
    }


@asynccontextmanager
async def open_engine(engine: str, embeddings: Any, scratch: Path
                      ) -> AsyncIterator[tuple[SemanticMemory, Callable[[], float]]]:
    """A fresh store of the engine, and a function measuring its stored megabytes."""
    if engine == "faiss":
        from memory.faiss_store import FaissMemory

        root = scratch / "faiss"
        yield FaissMemory(root, embeddings), lambda: folder_mb(root)
        return
    from redis.asyncio import Redis

    from memory.redis_store import RedisVectorMemory
    from server.embedded.redis_server import start_redis

    server = start_redis(scratch / "redis")
    client = Redis.from_url(server.url)
    try:
        async def used_mb() -> float:
            return int((await client.info("memory"))["used_memory"]) / 1e6

        baseline = await used_mb()
        # FLAT: exact, as the FAISS engine is below 20,000 memories; HNSW is for large ones.
        memory = RedisVectorMemory(client, embeddings, algorithm="FLAT")
        holder: dict[str, float] = {}

        def stored() -> float:
            return holder.get("mb", float("nan"))

        yield memory, stored
        holder["mb"] = await used_mb() - baseline
    finally:
        await client.aclose()
        server.stop()


async def run(data: Path, engines: list[str], keys: str, embeddings: Any = None,
              precision: str = "int8") -> dict[str, Any]:
    conversations = load_folder(data)
    if embeddings is None:
        from memory.embeddings import LocalEmbeddings

        # The server's encoder on one thread, as the server runs it; no cache, so every
        # search embeds its question.
        embeddings = LocalEmbeddings(cache_size=0, precision=precision)
    results: dict[str, Any] = {"data": str(data), "encoder": getattr(embeddings, "model_id", ""),
                               "conversations": [c.name for c in conversations]}
    embeddings.embed_array(["warm up"])  # the model's own memory is not the store's
    for engine in engines:
        scratch = Path(tempfile.mkdtemp(prefix=f"parley-eval-{engine}-"))
        try:
            async with open_engine(engine, embeddings, scratch) as (memory, stored_mb):
                result = await evaluate(memory, conversations, keys=keys)
                if engine == "faiss":
                    result["cost"]["stored_mb_per_1000"] = round(
                        stored_mb() / result["memories"] * 1000, 3)
            if engine == "redis":
                result["cost"]["stored_mb_per_1000"] = round(
                    stored_mb() / result["memories"] * 1000, 3)
            results[engine] = result
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return results


def table(results: dict[str, Any]) -> str:
    lines = []
    for engine in ("faiss", "redis"):
        if engine not in results:
            continue
        result = results[engine]
        lines += [f"**{engine}** engine, {results.get('encoder', '')}, "
                  f"{result['memories']} memories, {result['questions']['overall']} questions, "
                  f"keys: {result['keys']}", "",
                  "| search | group | recall@1 | recall@5 | recall@10 |", "|---|---|---|---|---|"]
        for mode, label in (("hybrid", "hybrid"), ("lexical", "BM25 only"),
                            ("dense", "dense only")):
            if mode not in result["recall"]:
                continue
            for group, values in result["recall"][mode].items():
                lines.append(f"| {label} | {group} ({result['questions'][group]}) | "
                             f"{values['@1']:.3f} | {values['@5']:.3f} | {values['@10']:.3f} |")
        cost = result["cost"]
        lines += ["", f"Cost: {cost['add_seconds']} s to add ({cost['add_seconds_per_1000']} s "
                  f"per 1,000), search p50 {cost['search_ms_p50']} ms / p99 "
                  f"{cost['search_ms_p99']} ms (hybrid, query embedding included), "
                  f"{cost.get('stored_mb_per_1000', '-')} MB stored and "
                  f"{cost['rss_mb_per_1000']} MB of process memory per 1,000 memories.", ""]
    if "faiss" in results and "redis" in results:
        gap = abs(results["faiss"]["recall"]["hybrid"]["overall"]["@10"]
                  - results["redis"]["recall"]["hybrid"]["overall"]["@10"])
        lines.append(f"Redis engine vs FAISS engine, hybrid recall@10: a gap of {gap:.3f}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder of LoCoMo-format *.json files (read in place)")
    parser.add_argument("--engines", default="faiss,redis")
    parser.add_argument("--keys", choices=("context", "turn"), default="context")
    parser.add_argument("--precision", choices=("int8", "float32"), default="int8",
                        help="the local MiniLM's (the server's default is int8)")
    parser.add_argument("--out", type=Path, default=RESULTS / "eval-memory.json")
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.error(f"{args.data} is not a folder: pass --data (or LOCOMO=... to make)")
    results = asyncio.run(run(args.data, args.engines.split(","), args.keys,
                              precision=args.precision))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    report = table(results)
    args.out.with_suffix(".md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
