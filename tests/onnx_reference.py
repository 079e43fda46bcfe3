"""The peer's graphs run by onnxruntime, as the reference the Flax port is checked against.

``float_graph`` removes the activations' QuantizeLinear and DequantizeLinear nodes of an int8
graph (the layout ops between them then move floats), keeping the weights' dequantization: the
same network in float32, which a float port should match to rounding. The shipped int8 graph is
the other reference (its output is posterized).
"""

from __future__ import annotations

import numpy as np


def free_size(data: bytes) -> bytes:
    """The graph with its image input and output free in height and width (the arbitrary
    transformer's file fixes 384×384 only because TFLite did; its ops take any size)."""
    import onnx

    model = onnx.load_from_string(data)
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[3].dim_value == 3:  # NHWC images
            dims[1].dim_param, dims[2].dim_param = "height", "width"
    return model.SerializeToString()


def float_graph(data: bytes) -> bytes:
    import onnx

    model = onnx.load_from_string(data)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    alias, keep = {}, []  # a removed node's output → its input
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and node.input[0] not in initializers:
            alias[node.output[0]] = node.input[0]
        else:
            keep.append(node)

    def resolve(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    for node in keep:
        node.input[:] = [resolve(name) for name in node.input]
    for output in graph.output:  # an output made by a removed node: the producer's output takes its name
        source = resolve(output.name)
        for node in keep:
            node.output[:] = [output.name if name == source else name for name in node.output]
            node.input[:] = [output.name if name == source else name for name in node.input]
    del graph.node[:]
    graph.node.extend(keep)
    return model.SerializeToString()


class Session:
    """One onnxruntime session on a graph's bytes, named inputs in order."""

    def __init__(self, data: bytes) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        return self.session.run(None, dict(zip(self.inputs, arrays, strict=True)))[0]
