"""Tool-routing accuracy of a chat model on tests/eval/routing.jsonl: `make eval`.

Each prompt names the tool a good assistant would call, or none. The model is bound to
stand-ins with the built-in tools' names, descriptions and argument schemas.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import tool

CASES = Path(__file__).with_name("routing.jsonl")


@tool
def get_weather(place: str, days: int = 1) -> str:
    """Current weather conditions and a forecast of up to 7 days for a place name."""
    return ""


@tool
def usage_report(period_days: int = 30) -> str:
    """A report with a chart of the user's own activity on Parley: messages per day,
    tools used, top topics."""
    return ""


@tool
def summarize_text(text: str, style: Literal["bullets", "paragraph", "tldr"] = "paragraph"
                   ) -> str:
    """Summarize a text the user gives, of any length."""
    return ""


@tool
def translate_text(text: str, target_language: str) -> str:
    """Translate a text into a target language, keeping its formatting."""
    return ""


TOOLS = [get_weather, usage_report, summarize_text, translate_text]


async def evaluate(model: BaseChatModel) -> dict[str, object]:
    bound = model.bind_tools(TOOLS)
    cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
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
    args = parser.parse_args()
    from agents.local_model import make_local_chat_model

    model = make_local_chat_model(model_path=args.model_path, n_ctx=2048, n_threads=None,
                                  temperature=0.0)
    result = asyncio.run(evaluate(model))
    for miss in result["misses"]:  # type: ignore[attr-defined]
        print(f"  expected {miss['expected']!s:15} got {miss['got']!s:15} {miss['prompt']}")
    print(f"routing accuracy {result['accuracy']:.0%} over {result['cases']} prompts: "
          f"wrong tool {result['wrong_tool']}, missed tool {result['missed_tool']}, "
          f"tool called for chit-chat {result['false_call']} ({result['seconds']} s)")
    return 0 if float(result["accuracy"]) >= args.min_accuracy else 1  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
