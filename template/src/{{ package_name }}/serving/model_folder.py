"""The model folder: everything the API, `score` and the container image need to answer.

models/serving/ (or MODEL_DIR) holds metadata.json (which model, what it
takes and must achieve, the libraries that wrote it, the fast path in use,
a checksum of every other file), model.joblib (the fitted pipeline),
model.onnx (the fast path, when it gives the pipeline's answers) and
examples.json (rows with the probabilities the pipeline gave them, answered
again at every load, so that a library that behaves differently is caught
before the API takes traffic). See docs/serving.md. Reading it needs neither
MLflow, the tracking store nor the training data.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as distributions
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field

from ..core.canvas import Canvas, DataContract
from ..core.errors import PipelineError
from ..core.params import Params
from ..core.settings import Settings
from . import fast_path
from .schema import Feature, valid_rows
from .settings import ServingSettings

if TYPE_CHECKING:
    import pandas as pd

FORMAT = 1
METADATA_FILE = "metadata.json"
MODEL_FILE = "model.joblib"
EXAMPLES_FILE = "examples.json"
EXAMPLE_ROWS = 5
# Libraries recorded in metadata.json; those that load a file are checked at load.
RECORDED_LIBRARIES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib")
FAST_PATH_LIBRARIES = ("onnxruntime", "skl2onnx", "onnx")
EXPORT_HINT = "export the model again"


def package_name() -> str:
    """The name of this project's package: the name a model folder must carry."""
    return __name__.split(".")[0]


def describe_model(
    params: Params,
    canvas: Canvas,
    *,
    version: str | int,
    run_id: str,
    git_commit: str,
    data_version: str,
    trained_at: str | None = None,
) -> dict[str, Any]:
    """The metadata write_model_folder needs, from params.yaml, canvas.yaml and the run."""
    goal = canvas.success_metric
    return {
        "name": package_name(),
        "version": str(version),
        "run_id": run_id,
        "git_commit": git_commit,
        "data_version": data_version,
        "features": {
            "numeric": list(params.features.numeric),
            "categorical": list(params.features.categorical),
        },
        "target": params.features.target,
        "trained_at": trained_at or datetime.now(UTC).isoformat(timespec="seconds"),
        "data_contract": canvas.data_contract.model_dump(),
        "success_metric": {
            "name": goal.name,
            "threshold": goal.threshold,
            "higher_is_better": goal.higher_is_better,
        },
        "latency_budget_ms": canvas.latency_budget_ms,
    }


class FeatureNames(Settings):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)


class Recorded(Settings):
    """The fields of metadata.json this code relies on (classes and files: open_model_folder)."""

    model_config = ConfigDict(extra="ignore")
    name: str
    version: str | int
    run_id: str
    git_commit: str
    data_version: str
    features: FeatureNames
    target: str
    trained_at: str
    data_contract: DataContract
    success_metric: dict[str, Any]
    latency_budget_ms: float | None = None


def read_features(metadata: dict[str, Any], source: Path) -> list[Feature]:
    """The model's features with their contract rules; refuse a contract they do not meet."""
    recorded = Recorded.validated(metadata, source)
    columns = recorded.data_contract.columns
    kinds = {"numeric": ("float", "int"), "categorical": ("category", "int")}
    features = []
    for kind, rule_types in kinds.items():
        for name in getattr(recorded.features, kind):
            if name not in columns:
                raise PipelineError(
                    f"{source}: the {kind} feature '{name}' has no rule in the data contract: "
                    f"add it to canvas.yaml's data_contract, then {EXPORT_HINT}."
                )
            rule = columns[name]
            if rule.type not in rule_types:
                raise PipelineError(
                    f"{source}: the {kind} feature '{name}' has type {rule.type} in the data "
                    f"contract; a {kind} feature needs {' or '.join(rule_types)}: fix canvas.yaml "
                    f"or params.yaml, then {EXPORT_HINT}."
                )
            features.append(Feature(name, kind, rule))
    if not features:
        raise PipelineError(f"{source}: `features` must list at least one feature.")
    return features


def _installed(name: str) -> str | None:
    try:
        return distributions.version(name)
    except distributions.PackageNotFoundError:
        return None


def _release(version: str, parts: int) -> tuple[int, ...]:
    """The first `parts` numbers of a version: "1.9.1" -> (1, 9) for parts=2."""
    return tuple(int(number) for number in re.findall(r"\d+", version)[:parts])


def check_libraries(metadata: dict[str, Any], source: Path, fast: bool) -> None:
    """Refuse a folder whose files the installed libraries cannot load safely.

    A pickled pipeline needs the scikit-learn release (major.minor) and the
    numpy major version that wrote it; an ONNX file needs onnxruntime, at
    least the release that checked it.
    """
    recorded = metadata.get("libraries")
    if not isinstance(recorded, dict):
        raise PipelineError(f"{source}: `libraries` is missing: {EXPORT_HINT}.")
    if fast:
        rules = [("onnxruntime", 2, "at least")]
    else:
        rules = [("scikit-learn", 2, "same"), ("numpy", 1, "same")]
    for name, parts, how in rules:
        wanted = recorded.get(name)
        if not isinstance(wanted, str):
            raise PipelineError(f"{source}: `libraries` does not record {name}: {EXPORT_HINT}.")
        installed = _installed(name)
        if installed is None:
            raise PipelineError(
                f"{source} needs {name} {wanted}, which is not installed: install the project's "
                "serving dependencies (`uv sync`)."
            )
        have, need = _release(installed, parts), _release(wanted, parts)
        if (how == "same" and have != need) or (how == "at least" and have < need):
            shown = ".".join(map(str, need))
            wanted_spec = f"{name}=={shown}.*" if how == "same" else f"{name}>={shown}"
            raise PipelineError(
                f"{source.parent} was written with {name} {wanted} but {installed} is "
                f"installed: install {wanted_spec}, or {EXPORT_HINT} with the installed libraries."
            )


def sha256_of(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def read_metadata(folder: Path) -> dict[str, Any]:
    """metadata.json of a model folder; a missing or unreadable one is a PipelineError."""
    path = folder / METADATA_FILE
    if not folder.is_dir():
        raise PipelineError(
            f"{folder} is missing: export a model first, or set MODEL_DIR (or "
            "deploy.yaml's serving.model_dir) to a model folder."
        )
    if not path.is_file():
        raise PipelineError(f"{folder} is not a model folder ({METADATA_FILE} is missing).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path} is corrupt ({error}): {EXPORT_HINT}.") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path} is corrupt (not a JSON object): {EXPORT_HINT}.")
    return data


@dataclass(frozen=True)
class ModelFolder:
    """A checked model folder: metadata read, libraries and checksums verified, model not loaded."""

    path: Path
    metadata: dict[str, Any]
    features: list[Feature]

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def classes(self) -> list[Any]:
        return list(self.metadata["classes"])

    @property
    def fast(self) -> bool:
        return bool(self.metadata.get("fast_path", {}).get("used"))

    @property
    def examples(self) -> dict[str, Any]:
        return json.loads((self.path / EXAMPLES_FILE).read_text(encoding="utf-8"))

    def load(self) -> ServingModel:
        """Load the model (ONNX when the fast path is in use) and answer the examples again."""
        if self.fast:
            predictor: Any = fast_path.OnnxPredictor(
                str(self.path / fast_path.ONNX_FILE), self.features
            )
        else:
            predictor = PipelinePredictor(self.path / MODEL_FILE, self.features)
        model = ServingModel(self, predictor)
        model.check_examples()
        return model


def open_model_folder(folder: Path) -> ModelFolder:
    """Check a model folder without loading its model (cheap: no scikit-learn import)."""
    metadata = read_metadata(folder)
    source = folder / METADATA_FILE
    if not isinstance(metadata.get("format"), int) or metadata["format"] > FORMAT:
        raise PipelineError(
            f"{source} has format {metadata.get('format')!r}, not one this code reads "
            f"(up to {FORMAT}): {EXPORT_HINT} with this version of the project."
        )
    name = metadata.get("name")
    if name != package_name():
        raise PipelineError(
            f"{folder} holds a model of project {name!r}, not {package_name()!r}: "
            "export this project's model, or point MODEL_DIR at its folder."
        )
    features = read_features(metadata, source)
    classes = metadata.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise PipelineError(f"{source}: `classes` must list the model's classes: {EXPORT_HINT}.")
    fast = bool((metadata.get("fast_path") or {}).get("used"))
    check_libraries(metadata, source, fast)
    files = metadata.get("files")
    if not isinstance(files, dict):
        raise PipelineError(f"{source}: `files` is missing: {EXPORT_HINT}.")
    needed = [fast_path.ONNX_FILE if fast else MODEL_FILE, EXAMPLES_FILE]
    for file_name in needed:
        path = folder / file_name
        if not path.is_file() or file_name not in files:
            raise PipelineError(f"{path} is missing: {EXPORT_HINT}.")
        if sha256_of(path) != files[file_name]:
            raise PipelineError(
                f"{path} is corrupt or was changed after export (its checksum differs from "
                f"metadata.json): {EXPORT_HINT}."
            )
    return ModelFolder(folder, metadata, features)


def load_model_folder(folder: Path) -> ServingModel:
    """Open, check and load a model folder."""
    return open_model_folder(folder).load()


class PipelinePredictor:
    """Probabilities from the pickled scikit-learn pipeline (the path without ONNX)."""

    def __init__(self, path: Path, features: list[Feature]) -> None:
        import joblib

        try:
            self.pipeline = joblib.load(path)
        except Exception as error:  # unpickling can raise anything: say which file
            raise PipelineError(f"{path} cannot be loaded ({error}): {EXPORT_HINT}.") from None
        self.features = features

    def frame(self, columns: dict[str, Any]) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        data = {}
        for feature in self.features:
            values = columns[feature.name]
            if feature.rule.type == "category":
                # NaN, as read from a CSV file: what the imputer was fitted to replace.
                data[feature.name] = fast_path.category_input(values, np.nan)[:, 0]
            else:  # numbers, including categories coded as numbers
                data[feature.name] = fast_path.numeric_input(feature.name, values, np.float64)[:, 0]
        return pd.DataFrame(data)

    def __call__(self, columns: dict[str, Any]) -> Any:
        import numpy as np

        frame = self.frame(columns)
        steps = getattr(self.pipeline, "steps", None)
        if not steps or len(steps) < 2:
            return np.asarray(self.pipeline.predict_proba(frame), dtype=np.float64)
        # Transform first, so that a value the scaler overflows is refused as a
        # bad row instead of crashing the estimator.
        transformed = self.pipeline[:-1].transform(frame)
        values = transformed.data if hasattr(transformed, "tocsr") else np.asarray(transformed)
        if not np.isfinite(values).all():
            rows = np.unique(np.nonzero(~np.isfinite(np.asarray(_dense(transformed))))[0])
            raise fast_path.RowsRejected(
                "row", [int(r) for r in rows], "values too large for the model"
            )
        return np.asarray(steps[-1][1].predict_proba(transformed), dtype=np.float64)


def _dense(matrix: Any) -> Any:
    return matrix.toarray() if hasattr(matrix, "toarray") else matrix


class ServingModel:
    """A loaded model: probabilities and answers for rows of features."""

    def __init__(self, folder: ModelFolder, predictor: Any) -> None:
        self.folder = folder
        self.metadata = folder.metadata
        self.version = folder.version
        self.classes = folder.classes
        self.path_name = "onnx" if folder.fast else "joblib"
        self._predict = predictor

    def columns(self, rows: Any) -> dict[str, Any]:
        """Feature columns from a DataFrame or a list of {column: value} rows."""
        if hasattr(rows, "columns"):
            return {f.name: rows[f.name].tolist() for f in self.folder.features}
        return {f.name: [row.get(f.name) for row in rows] for f in self.folder.features}

    def predict_proba(self, rows: Any) -> Any:
        """One probability per class and row (classes in the order of `classes`)."""
        import numpy as np

        probabilities = self._predict(self.columns(rows))
        if not np.isfinite(probabilities).all():
            bad = np.unique(np.nonzero(~np.isfinite(probabilities))[0])
            raise fast_path.RowsRejected(
                "row", [int(r) for r in bad], "the model gives no finite probability"
            )
        return probabilities

    def answers(self, rows: Any) -> list[dict[str, Any]]:
        """prediction, probability (of the positive class) and model version, per row."""
        probabilities = self.predict_proba(rows)
        winners = probabilities.argmax(axis=1)
        binary = probabilities.shape[1] == 2
        return [
            {
                "prediction": self.classes[int(winner)],
                "probability": round(float(row[1] if binary else row[winner]), 6),
                "model_version": self.version,
            }
            for row, winner in zip(probabilities, winners, strict=True)
        ]

    def check_examples(self) -> None:
        """The examples recorded at export must get the same probabilities now."""
        import numpy as np

        examples = self.folder.examples
        if not examples["rows"]:
            return  # no test row met the contract: nothing to compare
        expected = np.asarray(examples["probabilities"], dtype=np.float64)
        found = self.predict_proba(examples["rows"])
        same_shape = found.shape == expected.shape
        difference = float(np.abs(found - expected).max()) if same_shape else float("inf")
        if difference > fast_path.TOLERANCE:
            raise PipelineError(
                f"{self.folder.path}: the model's answers to {EXAMPLES_FILE} differ from those "
                f"recorded at export (by {difference:.2g}): the installed libraries behave "
                f"differently; install those in metadata.json's `libraries` or {EXPORT_HINT}."
            )


# --- writing -------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A numpy scalar as a plain Python value; NaN as None (JSON has no NaN)."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and value != value else value


def check_rows(frame: pd.DataFrame, features: list[Feature]) -> pd.DataFrame:
    """The test split, plus copies with each feature missing and each category unseen.

    The fast path must agree with the pipeline on the cases the test split
    may lack: imputed values and categories the encoder ignores.
    """
    import numpy as np
    import pandas as pd

    base = frame[[f.name for f in features]].reset_index(drop=True)
    sample = base.head(10)
    variants = [base]
    for feature in features:
        missing = sample.copy()
        missing[feature.name] = np.nan
        variants.append(missing)
        if feature.kind == "categorical":
            unseen = sample.copy()
            numbers = feature.rule.type != "category"
            unseen[feature.name] = base[feature.name].max() + 1 if numbers else "unseen category"
            variants.append(unseen)
    return pd.concat(variants, ignore_index=True)


def _examples(
    frame: pd.DataFrame, probabilities: Any, features: list[Feature], limit: int
) -> dict[str, Any]:
    """Up to `limit` rows the API accepts (contract-valid), with their probabilities."""
    kept = valid_rows(frame, features, ServingSettings().number_limit)[:limit]
    return {
        "rows": [row for _, row in kept],
        "probabilities": [[float(p) for p in probabilities[i]] for i, _ in kept],
    }


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_model_folder(
    folder: Path,
    pipeline: Any,
    metadata: dict[str, Any],
    test_frame: pd.DataFrame,
    *,
    fast: bool = True,
    extra_files: tuple[Path, ...] = (),
) -> dict[str, Any]:
    """Write a complete model folder in one step; return its metadata.

    `metadata` holds the fields describe_model returns; `extra_files` are
    copied in as they are, checksummed like the others (level 4 adds the
    training data's reference profile this way). The fast path is built
    and checked against the pipeline on the test split (and on variants of it
    with missing values and unseen categories); when it cannot be built or
    answers differently, the folder keeps the pipeline only, and
    metadata.json's `fast_path` says why. The folder is assembled next to its
    destination, then moved into place: a failure leaves the previous folder
    as it was.
    """
    import joblib
    import numpy as np

    features = read_features(metadata, Path("the model metadata"))
    if metadata["name"] != package_name():
        raise PipelineError(
            f"the model metadata names project {metadata['name']!r}, not {package_name()!r}: "
            "build it with describe_model."
        )
    absent = [f.name for f in features if f.name not in test_frame.columns]
    if absent:
        raise PipelineError(f"the test data lacks the features {', '.join(absent)}.")
    rows = check_rows(test_frame, features)
    try:
        reference = np.asarray(pipeline.predict_proba(rows), dtype=np.float64)
    except (ValueError, TypeError, KeyError) as error:
        raise PipelineError(f"the model cannot score the test data: {error}") from None
    classes = [_plain(c) for c in getattr(pipeline, "classes_", [])]
    if len(classes) != reference.shape[1]:
        raise PipelineError("the model must be a classifier with `classes_` (predict_proba).")

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    # mkdtemp makes a private folder; an image that runs as another user must read it.
    staging.chmod(0o755)
    try:
        joblib.dump(pipeline, staging / MODEL_FILE)
        columns = {f.name: rows[f.name].tolist() for f in features}
        fast_path_info = _build_fast_path(pipeline, features, columns, reference, staging, fast)
        _write_json(staging / EXAMPLES_FILE, _examples(rows, reference, features, EXAMPLE_ROWS))
        for extra in extra_files:
            shutil.copyfile(extra, staging / extra.name)
        libraries = RECORDED_LIBRARIES + (FAST_PATH_LIBRARIES if fast_path_info["used"] else ())
        written = {
            "format": FORMAT,
            **metadata,
            "version": str(metadata["version"]),
            "classes": classes,
            "libraries": {name: v for name in libraries if (v := _installed(name))},
            "fast_path": fast_path_info,
            "files": {
                path.name: sha256_of(path) for path in sorted(staging.iterdir()) if path.is_file()
            },
        }
        _write_json(staging / METADATA_FILE, written)
        _replace_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def _build_fast_path(
    pipeline: Any,
    features: list[Feature],
    columns: dict[str, Any],
    reference: Any,
    staging: Path,
    wanted: bool,
) -> dict[str, Any]:
    if not wanted:
        return {"used": False, "reason": "not asked for"}
    try:
        model = fast_path.convert(pipeline, features)
        checked = fast_path.check(model, features, columns, reference)
    except fast_path.FastPathUnavailable as reason:
        return {"used": False, "reason": str(reason)}
    (staging / fast_path.ONNX_FILE).write_bytes(model)
    return {"used": True, "format": "onnx", "file": fast_path.ONNX_FILE, **checked}


def _replace_folder(staging: Path, folder: Path) -> None:
    """Move the assembled folder into place, replacing an older model folder."""
    if not folder.exists():
        os.replace(staging, folder)
        return
    if not (folder / METADATA_FILE).is_file() and any(folder.iterdir()):
        raise PipelineError(
            f"{folder} exists and is not a model folder: move it away or choose another folder."
        )
    # A directory cannot replace a non-empty one in one step: swap through a
    # sibling name, so the old folder is gone only once the new one is whole.
    retired = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
    os.replace(folder, retired / folder.name)
    try:
        os.replace(staging, folder)
    except OSError:
        os.replace(retired / folder.name, folder)
        raise
    shutil.rmtree(retired, ignore_errors=True)
