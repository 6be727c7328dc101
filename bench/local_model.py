"""The local model in `make bench`: tokens/s through Parley against the raw runtime."""

from __future__ import annotations

import time
from typing import Any


async def local_model_benchmark(results: dict[str, Any]) -> None:
    from agents.local_model import LocalChatModel, default_model_path, load_model

    prompt = "Write a short paragraph about the sea."
    llm = load_model(default_model_path(), n_ctx=2048, n_threads=1)
    started, count = time.perf_counter(), 0
    for part in llm.stream_chat({"messages": [{"role": "user", "content": prompt}],
                                 "temperature": 0, "max_tokens": 128}):
        count += any((c.get("delta") or {}).get("content") for c in part.get("choices") or [])
    raw = count / (time.perf_counter() - started)
    model = LocalChatModel(model_path=str(default_model_path()), n_ctx=2048, n_threads=1,
                           temperature=0, max_tokens=128)
    started, chunks = time.perf_counter(), 0
    async for _chunk in model.astream(prompt):
        chunks += 1
    through = chunks / (time.perf_counter() - started)
    results["local_model"] = {"raw_tokens_per_s": round(raw, 1),
                              "parley_tokens_per_s": round(through, 1),
                              "ratio": round(through / raw, 3)}

