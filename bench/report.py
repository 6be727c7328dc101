"""The results of `make bench` as the README shows them: tables, the targets of the
benchmark issue computed within the run, and the plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def summarise(results: dict[str, Any]) -> str:
    base = results["in_process"]["p50"]

    def overhead(name: str) -> str:
        return f"{results[name]['p50'] - base:.2f}"

    rows = [("in-process `graph.ainvoke`", "in_process"), ("bare FastAPI", "bare"),
            ("plain LangServe `add_routes`", "langserve"),
            ("Parley `/chat` (auth, rate limit, memory)", "parley_chat"),
            ("Parley `/chat` without long-term memory", "parley_no_memory"),
            ("Parley LangServe route", "parley_langserve"),
            ("Parley Agent Protocol `runs/wait` (stream: `runs/stream`)", "parley_runs_wait"),
            ("Parley Agent Protocol `runs/stream`, read whole", "parley_runs_stream"),
            ("Parley `/chat/stream` cut after one event, resumed", "parley_chat_resumed"),
            ("Parley `runs/stream` cut after one event, joined", "parley_runs_resumed")]
    lines = [f"Run {results['date']} on {results['machine']}.", "",
             "| route | p50 ms | p99 ms | added p50 ms | first event ms | first token ms | "
             "turns/s c=1 / 8 / 32 | server CPU ms a turn (x LangServe's) | RSS MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, key in rows:
        if key not in results:  # a run from before the row existed
            continue
        r = results[key]
        stream = r.get("stream", {})
        tput = r.get("throughput", {})
        lines.append(
            f"| {label} | {r['p50']} | {r['p99']} | "
            f"{overhead(key) if key != 'in_process' else '-'} | "
            f"{stream.get('first_event', {}).get('p50', '-')} | "
            f"{stream.get('first_token', {}).get('p50', '-')} | "
            f"{' / '.join(str(tput[c]) for c in ('1', '8', '32')) if tput else '-'} | "
            f"{_cpu(r)} | {r.get('rss_mb', '-')} |")
    recall = results["recall"]
    lines += ["", "| semantic recall | p50 ms | p99 ms |", "|---|---|---|",
              f"| embed the query (MiniLM float32, ONNX Runtime) | "
              f"{recall['embed_query_ms']['p50']} | {recall['embed_query_ms']['p99']} |"]
    if "embed_query_ms_int8" in recall:
        lines.append(f"| embed the query (MiniLM int8, the server's) | "
                     f"{recall['embed_query_ms_int8']['p50']} | "
                     f"{recall['embed_query_ms_int8']['p99']} |")
    if "memory_turn_ms" in recall:
        lines.append(f"| a turn's recall and remember once the question is embedded (1,000 "
                     f"memories) | {recall['memory_turn_ms']['p50']} | "
                     f"{recall['memory_turn_ms']['p99']} |")
    lines += [f"| memory store search (hybrid), {int(size):,} memories ({recall[size]['index']}"
              + (f", recall@4 {recall[size]['recall_at_4']}" if "recall_at_4" in recall[size]
                 else "") + f") | {recall[size]['p50']} | {recall[size]['p99']} |"
              for size in ("1000", "10000", "100000")]
    window = results["redis_window"]
    model = results["local_model"]
    lines += ["", f"Redis window read p50 {window['read']['p50']} ms; a whole turn with its "
              f"checkpoint writes p50 {window['turn_with_checkpoints']['p50']} ms.",
              f"Local model: {model['parley_tokens_per_s']} tokens/s through Parley, "
              f"{model['raw_tokens_per_s']} raw ({model['ratio']:.0%}).", ""]
    if "checkpoint_cost" in results:
        cost = results["checkpoint_cost"]
        lines += [f"Redis per thread after {cost['turns']} turns (window full), by "
                  "checkpoints kept (PARLEY_THREAD_CHECKPOINTS) 1 / 10 / 20: `/chat` "
                  + " / ".join(f"{cost[f'chat_keep_{k}_kb']} KB" for k in (1, 10, 20))
                  + "; Agent Protocol runs (a checkpoint per step) "
                  + " / ".join(f"{cost[f'agent_protocol_keep_{k}_kb']} KB"
                               for k in (1, 10, 20)) + ".", ""]
    from bench.first_answer import summary_lines
    from bench.load import load_summary

    return "\n".join(lines + load_summary(results) + summary_lines(results) + [""]
                     + targets(results))


def _cpu(route: dict[str, Any]) -> str:
    if "cpu_ms_per_turn" not in route:  # a run from before it was measured, or no server
        return "-"
    return f"{route['cpu_ms_per_turn']} ({route.get('cpu_vs_langserve', '-')} x)"


def cpu_target(results: dict[str, Any]) -> list[str]:
    """Turns/s one server core gives, against LangServe's: the inverse of the CPU a turn
    costs the server, deferred work included."""
    if "cpu_vs_langserve" not in results.get("parley_no_memory", {}):
        return []
    ratio = {k: 1 / results[k]["cpu_vs_langserve"] for k in ("parley_chat",
                                                             "parley_no_memory")}
    return [f"| turns/s a server core gives (1 / CPU a turn) ≥ LangServe's | "
            f"{ratio['parley_chat']:.2f} x LangServe's "
            f"({ratio['parley_no_memory']:.2f} x without memory) | "
            f"{'yes' if ratio['parley_chat'] >= 1 else 'no'} | "
            f"{'yes' if ratio['parley_no_memory'] >= 1 else 'no'} |"]


def targets(results: dict[str, Any]) -> list[str]:
    """The benchmark issue's targets, as ratios within this run."""
    base = results["in_process"]["p50"]
    added = {k: results[k]["p50"] - base for k in ("langserve", "parley_chat",
                                                  "parley_no_memory")}
    token = {k: results[k]["stream"]["first_token"]["p50"]
             for k in ("langserve", "parley_chat", "parley_no_memory")}
    tput = {k: results[k]["throughput"]["32"] for k in ("langserve", "parley_chat",
                                                        "parley_no_memory")}
    recall = results["recall"]["100000"]
    ratio = results["local_model"]["ratio"]

    def met(ok: bool) -> str:
        return "yes" if ok else "no"

    nm = "parley_no_memory"
    doubled = [
        f"| with memory on, Parley's added cost per turn ≤ 2 x LangServe's | "
        f"{added['parley_chat']:.1f} ms vs 2 x {added['langserve']:.1f} ms: "
        f"{added['parley_chat'] / added['langserve']:.1f} x | "
        f"{met(added['parley_chat'] <= 2 * added['langserve'])} | "
        f"{met(added[nm] <= 2 * added['langserve'])} |"]
    return [
        "| target | measured in this run | met | met without long-term memory |",
        "|---|---|---|---|", *doubled,
        f"| Parley's added cost per turn ≤ LangServe's | {added['parley_chat']:.1f} ms "
        f"({added[nm]:.1f} without long-term memory) vs {added['langserve']:.1f} ms | "
        f"{met(added['parley_chat'] <= added['langserve'])} | "
        f"{met(added[nm] <= added['langserve'])} |",
        f"| first answer token ≤ 1.2 x LangServe's | {token['parley_chat']:.1f} ms "
        f"({token[nm]:.1f} without memory) vs {token['langserve']:.1f} ms: "
        f"{token['parley_chat'] / token['langserve']:.1f} x "
        f"({token[nm] / token['langserve']:.1f} x) | "
        f"{met(token['parley_chat'] <= 1.2 * token['langserve'])} | "
        f"{met(token[nm] <= 1.2 * token['langserve'])} |",
        f"| turns/s at c=32 ≥ LangServe's | {tput['parley_chat']:.0f} "
        f"({tput[nm]:.0f} without memory) vs {tput['langserve']:.0f} | "
        f"{met(tput['parley_chat'] >= tput['langserve'])} | "
        f"{met(tput[nm] >= tput['langserve'])} |",
        *cpu_target(results),
        *protocol_target(results),
        f"| local model ≥ 95% of the raw runtime | {ratio:.0%} | {met(ratio >= 0.95)} | - |",
        f"| recall p99 ≤ 5 ms at 100,000 memories | {recall['p99']:.1f} ms (hybrid, "
        f"lexical index included; "
        f"{recall['index']} index"
        + (f", {recall['recall_at_4']:.0%} of the exact top 4" if "recall_at_4" in recall
           else "") + f") | {met(recall['p99'] <= 5)} | - |", "", memory_floor(results), ""]


def protocol_target(results: dict[str, Any]) -> list[str]:
    """The Agent Protocol issue's target: a `runs/wait` turn within 1.5 x `/chat`'s."""
    if "parley_runs_wait" not in results:
        return []
    wait, chat = results["parley_runs_wait"]["p50"], results["parley_chat"]["p50"]
    met = "yes" if wait <= 1.5 * chat else "no"
    return [f"| Agent Protocol `runs/wait` p50 ≤ 1.5 x `/chat`'s | {wait:.1f} ms vs "
            f"{chat:.1f} ms: {wait / chat:.2f} x | {met} | - |"]


def server_embedding(recall: dict[str, Any]) -> dict[str, float]:
    """The query embedding the server runs: int8 since it is the default (older runs
    measured float32 only)."""
    result: dict[str, float] = recall.get("embed_query_ms_int8", recall["embed_query_ms"])
    return result


def memory_floor(results: dict[str, Any]) -> str:
    """What long-term memory costs any server, whatever its own layers: the bare FastAPI
    endpoint plus one query embedding, against the first two targets."""
    embed = server_embedding(results["recall"])["p50"]
    base = results["in_process"]["p50"]
    added = results["bare"]["p50"] - base + embed
    token = results["bare"]["stream"]["first_token"]["p50"] + embed
    langserve_added = results["langserve"]["p50"] - base
    langserve_token = results["langserve"]["stream"]["first_token"]["p50"]
    reach = ("within reach" if added <= langserve_added and token <= 1.2 * langserve_token
             else "out of reach of any server with this embedding model on one core")
    return (f"With long-term memory on, the floor is the bare FastAPI endpoint plus one "
            f"query embedding ({embed:.1f} ms): {added:.1f} ms added per turn (LangServe's "
            f"{langserve_added:.1f}) and the first token at {token:.1f} ms (1.2 x LangServe's "
            f"is {1.2 * langserve_token:.1f}). The first two targets with memory are {reach}.")


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    keys = ["in_process", "bare", "langserve", "parley_chat", "parley_no_memory",
            "parley_langserve"]
    labels = ["in-process", "bare FastAPI", "LangServe", "Parley /chat", "… no memory",
              "Parley LangServe"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    left.bar(labels, [results[k]["p50"] for k in keys], color="#1d3557", label="p50")
    left.scatter(labels, [results[k]["p99"] for k in keys], color="#e63946", label="p99",
                 zorder=3)
    left.set_ylabel("ms per turn")
    left.set_title("Latency of one turn (sequential)")
    left.legend()
    left.tick_params(axis="x", rotation=20)
    for key, label in (("bare", "bare"), ("langserve", "LangServe"),
                       ("parley_chat", "Parley /chat"),
                       ("parley_no_memory", "Parley /chat, no memory")):
        tput = results[key]["throughput"]
        right.plot([1, 8, 32], [tput["1"], tput["8"], tput["32"]], marker="o", label=label)
    right.set_xscale("log", base=2)
    right.set_xlabel("concurrent clients")
    right.set_ylabel("turns/s")
    right.set_title("Throughput")
    right.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

