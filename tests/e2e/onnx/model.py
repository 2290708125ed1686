"""The ONNX end-to-end test's Python side: `build` writes a small two-head model with Python's
`onnx` package; `score` runs it with Python's `onnxruntime` on a user's candidates, fed as Feed
feeds them, and prints the reference scores Feed's must equal.

    python3 model.py build OUT.onnx [--item-width N]
    python3 model.py score MODEL.onnx DATA_DIR USER_ID

The model: `item` float32 [batch, 2] (year / 1000, (year - 1950) / 10) and `context` float32
[batch, 2] (the user's age, how many items they have interacted with) → two logits through
one linear layer → `like` = sigmoid(first) as [batch, 1] and `hide` = sigmoid(second) as
[batch] (both output shapes a head may read).
"""

import csv
import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

W_ITEM = [[0.9, -1.3], [0.35, 0.2], [-0.5, 0.7]]
W_CONTEXT = [[0.04, -0.02], [0.11, -0.08]]
BIAS = [-1.2, -0.6]


def build(out, item_width=2):
    w_item = numpy_helper.from_array(np.array(W_ITEM[:item_width], np.float32), "w_item")
    w_context = numpy_helper.from_array(np.array(W_CONTEXT, np.float32), "w_context")
    bias = numpy_helper.from_array(np.array(BIAS, np.float32), "bias")
    ints = lambda name, values: numpy_helper.from_array(np.array(values, np.int64), name)
    nodes = [
        helper.make_node("MatMul", ["item", "w_item"], ["a"]),
        helper.make_node("MatMul", ["context", "w_context"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["ab"]),
        helper.make_node("Add", ["ab", "bias"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["p"]),
        helper.make_node("Slice", ["p", "zero", "one", "one"], ["like"]),
        helper.make_node("Slice", ["p", "one", "two", "one"], ["hide_column"]),
        helper.make_node("Squeeze", ["hide_column", "one"], ["hide"]),
    ]
    graph = helper.make_graph(
        nodes,
        "feed_test",
        [
            helper.make_tensor_value_info("item", TensorProto.FLOAT, ["batch", item_width]),
            helper.make_tensor_value_info("context", TensorProto.FLOAT, ["batch", 2]),
        ],
        [
            helper.make_tensor_value_info("like", TensorProto.FLOAT, ["batch", 1]),
            helper.make_tensor_value_info("hide", TensorProto.FLOAT, ["batch"]),
        ],
        [w_item, w_context, bias, ints("zero", [0]), ints("one", [1]), ints("two", [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out)


def score(model, data, user):
    import onnxruntime

    with open(f"{data}/items.csv") as f:
        items = list(csv.DictReader(f))
    with open(f"{data}/users.csv") as f:
        age = {r["user_id"]: float(r["age"]) for r in csv.DictReader(f)}
    with open(f"{data}/ratings.csv") as f:
        history = len({r["item_id"] for r in csv.DictReader(f) if r["user_id"] == user})
    item = np.array(
        [[int(r["year"]) / 1000.0, (int(r["year"]) - 1950) / 10.0] for r in items], np.float32
    )
    context = np.array([[age.get(user, 0.0), history]] * len(items), np.float32)
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    like, hide = session.run(["like", "hide"], {"item": item, "context": context})
    scores = {
        r["item_id"]: [float(l), float(h)]
        for r, l, h in zip(items, like[:, 0], hide)
    }
    print(json.dumps(scores))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        width = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--item-width" else 2
        build(sys.argv[2], width)
    elif sys.argv[1] == "score":
        score(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
