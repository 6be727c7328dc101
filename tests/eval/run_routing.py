"""Tool-routing accuracy of a chat model on tests/eval/routing.jsonl: `make eval`.

Each prompt names the tool a good assistant would call, or none. The model is bound to the
real built-in tools: their names, descriptions, argument schemas and example phrasings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

CASES = Path(__file__).with_name("routing.jsonl")
# Written after the router's threshold was chosen on CASES, to check it was not overfitted.
HOLDOUT = Path(__file__).with_name("routing_holdout.jsonl")


class NoHistory:
    """The reports tool needs a history to read; routing never calls it."""

    async def rows(self, user_id: str, since: object) -> list[object]:
        return []


def built_in_tools(model: BaseChatModel, folder: Path,
                   translation: str = "apertium") -> list[BaseTool]:
    """The real built-in tools: their names, descriptions, schemas and examples; the
    translator as `make run` builds it (PARLEY_TRANSLATION's default, "auto")."""
    from tools.context import ToolContext
    from tools.reports import reports_tools
    from tools.summarizer import summarizer_tools
    from tools.translator import translator_tools
    from tools.weather import weather_tools

    ctx = ToolContext(llm=model, options={"reports_dir": str(folder), "translation": translation},
                      services={"history": NoHistory()})
    return [*weather_tools(ctx), *reports_tools(ctx), *summarizer_tools(ctx),
            *translator_tools(ctx)]


async def evaluate(model: BaseChatModel, cases_file: Path = CASES) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        bound = model.bind_tools(built_in_tools(model, Path(folder)))
    text = await asyncio.to_thread(cases_file.read_text)
    cases = [json.loads(line) for line in text.splitlines() if line.strip()]
    right = wrong_tool = missed = false_call = 0
    misses = []
    started = time.perf_counter()
    for case in cases:
        reply = await bound.ainvoke(case["prompt"])
        called = reply.tool_calls[0]["name"] if reply.tool_calls else None
        expected = case["expected_tool"]
        if called == expected:
            right += 1
            continue
        if expected is None:
            false_call += 1
        elif called is None:
            missed += 1
        else:
            wrong_tool += 1
        misses.append({"prompt": case["prompt"][:70], "expected": expected, "got": called})
    return {"cases": len(cases), "accuracy": right / len(cases), "wrong_tool": wrong_tool,
            "missed_tool": missed, "false_call": false_call, "misses": misses,
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-path", help="a GGUF file (default: the shipped model)")
    parser.add_argument("--min-accuracy", type=float, default=0.0,
                        help="exit 1 below this accuracy (0-1)")
    parser.add_argument("--no-router", action="store_true",
                        help="let the model choose through a JSON enum instead")
    args = parser.parse_args()
    from agents.local_model import make_local_chat_model
    from memory.embeddings import LocalEmbeddings

    model = make_local_chat_model(model_path=args.model_path, n_ctx=2048, n_threads=None,
                                  temperature=0.0,
                                  router=None if args.no_router else LocalEmbeddings())
    worst = 1.0
    for name, cases in (("routing.jsonl", CASES), ("routing_holdout.jsonl", HOLDOUT)):
        result = asyncio.run(evaluate(model, cases))
        for miss in result["misses"]:  # type: ignore[attr-defined]
            print(f"  expected {miss['expected']!s:15} got {miss['got']!s:15} "
                  f"{miss['prompt']}")
        print(f"{name}: routing accuracy {result['accuracy']:.0%} over {result['cases']} "
              f"prompts: wrong tool {result['wrong_tool']}, missed tool "
              f"{result['missed_tool']}, tool called for chit-chat {result['false_call']} "
              f"({result['seconds']} s)")
        worst = min(worst, float(result["accuracy"]))  # type: ignore[arg-type]
    return 0 if worst >= args.min_accuracy else 1


if __name__ == "__main__":
    sys.exit(main())
