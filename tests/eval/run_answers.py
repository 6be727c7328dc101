"""Answer checks of the local model on tests/eval/answers.jsonl: part of `make eval`.

Each case is a thread of user messages run through the assistant agent's real graph (its
instructions and built-in tools, the local model answering, its earlier answers kept in
the thread), and its last answer is checked as a user would read it:
- no loop: the loop guard finds no repeated line or run of words, and nothing was cut;
- in words: at least three words, and no tool call left unanswered;
- the asked-for content: one of `expect_any` (a stated name or city recalled, a word of
  the translation in the asked language, the one right fact), accents and case ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

CASES = Path(__file__).with_name("answers.jsonl")


def plain(text: str) -> str:
    """Lower case without accents: 'estación' matches 'estacion'."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass
class Checked:
    case: dict[str, Any]
    answer: str
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def check(case: dict[str, Any], answer: str) -> list[str]:
    from agents.local_model import CUT_LENGTH, CUT_LOOPING
    from agents.loop_guard import LoopGuard

    failures = []
    guard = LoopGuard()
    if CUT_LOOPING.strip() in answer or guard.feed(answer + "\n"):
        failures.append(f"loops ({guard.reason or 'cut by the guard'})")
    if CUT_LENGTH.split("{")[0].strip() in answer:
        failures.append("ran to the length cap")
    if len(answer.split()) < 3:
        failures.append("not an answer in words")
    expected = case.get("expect_any") or []
    if expected and not any(plain(word) in plain(answer) for word in expected):
        failures.append(f"none of {expected}")
    return failures


async def run_case(graph: Any, case: dict[str, Any], thread: str) -> str:
    config = {"configurable": {"thread_id": thread, "user_id": "eval", "agent": "assistant"}}
    answer = ""
    for turn in case["turns"]:
        state = await graph.ainvoke({"messages": [("user", turn)]}, config)
        answer = state["messages"][-1].text
    return answer


async def evaluate(model: BaseChatModel, cases_file: Path = CASES,
                   progress: Callable[[str], None] | None = None,
                   kind: str | None = None, translation: str = "apertium") -> dict[str, Any]:
    from langgraph.checkpoint.memory import InMemorySaver

    from agents.catalog import load_agents
    from graphs.builder import build_graph
    from graphs.deps import GraphDeps
    from tests.eval.run_routing import built_in_tools

    spec = load_agents()["assistant"]
    text = await asyncio.to_thread(cases_file.read_text)
    cases = [json.loads(line) for line in text.splitlines() if line.strip()]
    cases = [case for case in cases if kind is None or case["kind"] == kind]
    checked: list[Checked] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        deps = GraphDeps(model=model, tools=built_in_tools(model, Path(folder), translation),
                         instructions=spec.instructions)
        graph = build_graph(deps).compile(checkpointer=InMemorySaver())
        for number, case in enumerate(cases):
            answer = await run_case(graph, case, f"case-{number}")
            checked.append(Checked(case, answer, check(case, answer)))
            if progress:
                progress(f"{number + 1}/{len(cases)} "
                         f"{'pass' if checked[-1].passed else 'FAIL'} {case['turns'][-1]!r}")
    kinds = sorted({c.case["kind"] for c in checked})
    return {
        "cases": len(checked),
        "pass_rate": sum(c.passed for c in checked) / len(checked),
        "by_kind": {k: f"{sum(c.passed for c in checked if c.case['kind'] == k)}/"
                       f"{sum(1 for c in checked if c.case['kind'] == k)}" for k in kinds},
        "loops": sum(any(f.startswith("loops") for f in c.failures) for c in checked),
        "failed": [{"turns": c.case["turns"], "answer": c.answer[:200],
                    "why": c.failures} for c in checked if not c.passed],
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-path", help="a GGUF file (default: the shipped model)")
    parser.add_argument("--min-pass-rate", type=float, default=0.0,
                        help="exit 1 below this pass rate (0-1)")
    parser.add_argument("--kind", help="only the cases of this kind, e.g. translate")
    parser.add_argument("--translation", choices=["apertium", "model"], default="apertium",
                        help="the translator's engine (`make run`'s is Apertium)")
    args = parser.parse_args()
    from agents.local_model import make_local_chat_model
    from memory.embeddings import LocalEmbeddings

    # As `make run` builds it: the default decoding and temperature, the shared router.
    model = make_local_chat_model(model_path=args.model_path, n_ctx=4096, n_threads=None,
                                  temperature=0.2, router=LocalEmbeddings())
    result = asyncio.run(evaluate(model, progress=lambda line: print(line, flush=True),
                                  kind=args.kind, translation=args.translation))
    for failed in result["failed"]:
        print(f"  {' / '.join(failed['turns'])[:70]!r}: {', '.join(failed['why'])}\n"
              f"      {failed['answer'][:160]!r}")
    print(f"answers.jsonl: {result['pass_rate']:.0%} of {result['cases']} answers pass "
          f"({', '.join(f'{k} {v}' for k, v in result['by_kind'].items())}); "
          f"loops: {result['loops']} ({result['seconds']} s)")
    return 0 if result["pass_rate"] >= args.min_pass_rate else 1


if __name__ == "__main__":
    sys.exit(main())
