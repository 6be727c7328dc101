"""A second, independent MiniLM forward pass in plain numpy, to check the ONNX graph against:
the same weights, every operation written out as the BERT paper and sentence-transformers
define it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


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


class NumpyMiniLM:
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


