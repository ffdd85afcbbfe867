"""The fast path: the fitted pipeline converted to ONNX and run with onnxruntime.

Checked, never trusted (docs/serving.md). Two details of the conversion:
numbers go in as float32 (onnxruntime has no double imputer); an ONNX string
tensor cannot hold a missing value, so the converted copy of each categorical
imputer treats MISSING_CATEGORY as missing, and missing categories are sent
as that text.
"""

from __future__ import annotations

import contextlib
import copy
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from .schema import Feature

# Largest difference in probability accepted between the pipeline and ONNX.
TOLERANCE = 1e-5
MISSING_CATEGORY = "\x00missing"
ONNX_FILE = "model.onnx"


class FastPathUnavailable(Exception):
    """The pipeline cannot be converted, or its conversion answers differently."""


class RowsRejected(ValueError):
    """Rows the model cannot score, such as a number that overflows float32."""

    def __init__(self, field: str, rows: list[int], problem: str) -> None:
        super().__init__(f"{field}: {problem} (rows {rows[:5]})")
        self.field = field
        self.rows = rows
        self.problem = problem


def is_missing(value: Any) -> bool:
    return value is None or value != value  # None or NaN


def numeric_input(name: str, values: Sequence[Any], dtype: Any) -> Any:
    """A column of numbers as an (n, 1) array; missing values become NaN."""
    import numpy as np

    with np.errstate(over="ignore"):
        array = np.asarray(values, dtype=dtype).reshape(-1, 1)
    infinite = np.isinf(array).ravel()
    if infinite.any():
        rows = [int(row) for row in infinite.nonzero()[0]]
        raise RowsRejected(name, rows, "number too large for the model")
    return array


def category_input(values: Sequence[Any], missing: Any) -> Any:
    """A column of categories as an (n, 1) object array; missing ones become `missing`."""
    import numpy as np

    texts = [missing if is_missing(value) else str(value) for value in values]
    return np.asarray(texts, dtype=object).reshape(-1, 1)


class OnnxPredictor:
    """Probabilities from an ONNX model whose inputs are the feature columns."""

    def __init__(self, model: bytes | str, features: list[Feature]) -> None:
        # onnxruntime sends usage telemetry unless told not to; where the lookup
        # hangs (no DNS, a firewall) it delays every shutdown by seconds.
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One row takes microseconds: thread pools cost more than they save,
        # and several API workers would fight over the cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            model, options, providers=["CPUExecutionProvider"]
        )
        self.features = features

    def __call__(self, columns: dict[str, Sequence[Any]]) -> Any:
        import numpy as np

        feeds = {}
        for feature in self.features:
            values = columns[feature.name]
            if feature.kind == "numeric":
                feeds[feature.name] = numeric_input(feature.name, values, np.float32)
            else:
                feeds[feature.name] = category_input(values, MISSING_CATEGORY)
        (probabilities,) = self.session.run(["probabilities"], feeds)
        return probabilities.astype(np.float64)


def _final_estimator(pipeline: Any) -> Any:
    steps = getattr(pipeline, "steps", None)
    return steps[-1][1] if steps else pipeline


def _imputers(estimator: Any) -> Iterator[Any]:
    """Every SimpleImputer inside pipelines and column transformers."""
    from sklearn.impute import SimpleImputer

    if isinstance(estimator, SimpleImputer):
        yield estimator
    for _, step in getattr(estimator, "steps", []):
        yield from _imputers(step)
    for _, transformer, _ in getattr(estimator, "transformers_", []):
        yield from _imputers(transformer)


def _with_text_missing_marker(pipeline: Any) -> Any:
    """A copy whose categorical imputers look for MISSING_CATEGORY instead of NaN."""
    converted = copy.deepcopy(pipeline)
    for imputer in _imputers(converted):
        statistics = getattr(imputer, "statistics_", None)
        if statistics is not None and statistics.dtype == object:
            imputer.missing_values = MISSING_CATEGORY
    return converted


@contextlib.contextmanager
def _integer_tree_flags() -> Iterator[None]:
    """Work around skl2onnx 1.20 passing a bool where ONNX wants an int.

    Its HistGradientBoosting converter marks leaves with `False`, which recent
    protobuf refuses in an integer list. The flag is cast to int during the
    conversion only; the conversion is then checked like any other.
    """
    try:
        from skl2onnx.common import tree_ensemble
    except ImportError:
        yield
        return
    original = getattr(tree_ensemble, "add_node", None)
    if original is None:
        yield
        return

    def add_node(*args: Any, **kwargs: Any) -> Any:
        flag = kwargs.get("nodes_missing_value_tracks_true")
        if flag is not None:
            kwargs["nodes_missing_value_tracks_true"] = int(flag)
        return original(*args, **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def convert(pipeline: Any, features: list[Feature]) -> bytes:
    """The pipeline as ONNX bytes; FastPathUnavailable says why when it cannot be."""
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError:
        raise FastPathUnavailable("skl2onnx is not installed") from None
    not_text = [f.name for f in features if f.kind == "categorical" and f.rule.type != "category"]
    if not_text:
        raise FastPathUnavailable(f"categorical features of a non-text type: {', '.join(not_text)}")
    inputs = [
        (f.name, FloatTensorType([None, 1]) if f.kind == "numeric" else StringTensorType([None, 1]))
        for f in features
    ]
    converted = _with_text_missing_marker(pipeline)
    options = {id(_final_estimator(converted)): {"zipmap": False}}
    try:
        with warnings.catch_warnings(), _integer_tree_flags():
            warnings.simplefilter("ignore")
            model = convert_sklearn(converted, initial_types=inputs, options=options)
    except Exception as error:  # any converter failure means: no fast path
        raise FastPathUnavailable(f"conversion failed: {_first_line(error)}") from None
    return model.SerializeToString()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


def check(
    model: bytes, features: list[Feature], columns: dict[str, Any], expected: Any
) -> dict[str, Any]:
    """Compare the ONNX model with the pipeline's probabilities on the check rows."""
    import numpy as np

    try:
        probabilities = OnnxPredictor(model, features)(columns)
    except Exception as error:  # a model onnxruntime cannot run means: no fast path
        raise FastPathUnavailable(f"onnxruntime cannot run it: {_first_line(error)}") from None
    if probabilities.shape != expected.shape:
        raise FastPathUnavailable(
            f"it returns {probabilities.shape[1]} probabilities a row, not {expected.shape[1]}"
        )
    difference = float(np.abs(probabilities - expected).max())
    same_classes = bool((probabilities.argmax(axis=1) == expected.argmax(axis=1)).all())
    if difference > TOLERANCE or not same_classes:
        raise FastPathUnavailable(
            f"it differs from the pipeline on the check rows (probabilities up to "
            f"{difference:.2g} apart{'' if same_classes else ', other classes'})"
        )
    return {"max_difference": difference, "checked_rows": int(expected.shape[0])}
