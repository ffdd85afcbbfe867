"""Command `smoke`: check a running model API end to end, local or deployed.

    uv run <package> smoke --url https://churn.example.com   # a deployed API
    uv run <package> smoke --start                           # a local server, started and stopped

The checks, in order, are listed in docs/serving.md; the first that fails is
the one-line error.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.errors import PipelineError
from .client import LocalServer, add_target_arguments, join, parse_url, request, wait_ready
from .model_folder import read_features
from .schema import Feature, valid_rows
from .settings import ServingSettings, load_serving_settings

# Answers are rounded to 6 decimals; the fast path may differ by 1e-5.
PROBABILITY_TOLERANCE = 2e-5


class Checks:
    """Named checks ("POST /predict ...") against one API; stop at the first failure."""

    def __init__(
        self, url: str, token: str | None, extra_headers: Mapping[str, str] | None = None
    ) -> None:
        self.url, self.token = url, token
        self.extra_headers = extra_headers  # what the platform in front needs (Cloud Run's IAM)
        self.passed: list[str] = []

    def __call__(
        self,
        name: str,
        status: int = 200,
        test: Callable[[Any], str] = lambda body: "",
        body: Any = None,
        token: bool = True,
    ) -> Any:
        """Send the request `name` starts with; fail unless it gets `status` and passes `test`."""
        method, path = name.split()[:2]
        answer = request(
            join(self.url, path),
            method,
            body,
            token=self.token if token else None,
            extra_headers=self.extra_headers,
        )
        if answer.status != status:
            raise PipelineError(
                f"smoke: {name}: expected HTTP {status}, got {answer.status}: "
                f"{str(answer.body)[:200]}"
            )
        problem = test(answer.body)
        if problem:
            raise PipelineError(f"smoke: {name}: {problem}")
        self.passed.append(f"{name} ({answer.seconds * 1000:.1f} ms)")
        print(f"smoke: ok  {self.passed[-1]}")
        return answer.body


def _answers_problem(body: Any, count: int, classes: list[Any] | None, version: str) -> str:
    answers = body.get("predictions") if isinstance(body, dict) else None
    if not isinstance(answers, list) or len(answers) != count:
        return f"expected {count} answers, got {str(body)[:200]}"
    for index, answer in enumerate(answers):
        probability = answer.get("probability")
        if not isinstance(probability, int | float) or not 0 <= probability <= 1:
            return f"answer {index} has no probability between 0 and 1: {answer}"
        if classes is not None and answer.get("prediction") not in classes:
            return f"answer {index} predicts {answer.get('prediction')!r}, not one of {classes}"
        if answer.get("model_version") != version:
            return f"answer {index} comes from model version {answer.get('model_version')!r}"
    return ""


def _examples_problem(body: Any, examples: dict[str, Any]) -> str:
    answers = body.get("predictions", []) if isinstance(body, dict) else []
    for index, (answer, expected) in enumerate(
        zip(answers, examples["probabilities"], strict=False)
    ):
        wanted = expected[1] if len(expected) == 2 else max(expected)
        if abs(answer.get("probability", -1) - wanted) > PROBABILITY_TOLERANCE:
            return (
                f"example {index} got probability {answer.get('probability')}, "
                f"{wanted:.6f} was recorded at export: the API runs another model or library"
            )
    return ""


def data_rows(
    data: Path, features: list[Feature], limit: int, number_limit: float
) -> list[dict[str, Any]]:
    """Up to `limit` contract-valid rows of a CSV/Parquet file, as the API takes them."""
    from .score import read_table

    if not data.is_file() or limit <= 0:
        return []
    frame = read_table(data)
    missing = [f.name for f in features if f.name not in frame.columns]
    if missing:
        raise PipelineError(f"{data} lacks the model's features {', '.join(missing)}.")
    return [row for _, row in valid_rows(frame.head(limit * 2), features, number_limit)][:limit]


def _broken(row: dict[str, Any], features: list[Feature]) -> dict[str, Any]:
    """The row with its first feature set to a value of the wrong type."""
    feature = features[0]
    wrong = 12.5 if feature.rule.type == "category" else "not a number"
    return {**row, feature.name: wrong}


def check_api(
    url: str,
    folder: Any,
    settings: ServingSettings,
    data: Path,
    rows: int,
    expect_version: str | None,
    extra_headers: Mapping[str, str] | None = None,
) -> list[str]:
    """Run every check against the API at url; return the passed checks."""
    check = Checks(url, settings.token, extra_headers)
    version = expect_version or (folder.version if folder else None)
    check("GET /health")
    check("GET /ready")
    metadata = check("GET /version", test=lambda b: _version_problem(b, folder, version))
    version = version or str(metadata.get("version"))
    if folder is not None:
        classes, features = folder.classes, folder.features
    else:  # a deployed API without a local folder: its own metadata describes it
        classes, features = metadata.get("classes"), read_features(metadata, Path("/version"))
    samples: list[dict[str, Any]] = []
    if folder is not None and folder.examples["rows"]:
        examples = folder.examples
        samples = examples["rows"]
        check(
            f"POST /predict {len(samples)} recorded examples",
            body={"rows": samples},
            test=lambda b: (
                _answers_problem(b, len(samples), classes, version)
                or _examples_problem(b, examples)
            ),
        )
    test_rows = data_rows(data, features, rows, settings.number_limit)
    if test_rows:
        check(
            f"POST /predict {len(test_rows)} rows of {data}",
            body={"rows": test_rows},
            test=lambda b: _answers_problem(b, len(test_rows), classes, version),
        )
        samples = samples or test_rows
    if not samples:
        raise PipelineError(
            "smoke: no rows to send: pass --model-dir (a model folder with examples.json) "
            "or --data (a CSV or Parquet file of rows)."
        )
    check(
        "POST /predict one row",
        body=samples[0],
        test=lambda b: _answers_problem({"predictions": [b]}, 1, classes, version),
    )
    check(
        "POST /predict a row that breaks the contract is refused",
        422,
        lambda b: "" if isinstance(b, dict) and b.get("detail") else "no detail in the 422",
        body=_broken(samples[0], features),
    )
    if settings.token:
        check("POST /predict without the token is refused", 401, body=samples[0], token=False)
    return check.passed


def _version_problem(body: Any, folder: Any, version: str | None) -> str:
    if not isinstance(body, dict):
        return f"not a JSON object: {str(body)[:200]}"
    if folder is not None and body.get("name") != folder.metadata["name"]:
        return f"the API serves project {body.get('name')!r}, not {folder.metadata['name']!r}"
    if version is not None and str(body.get("version")) != version:
        return f"the API serves model version {body.get('version')!r}, expected {version!r}"
    return ""


def _local_folder(model_dir: Path, required: bool) -> Any:
    from .model_folder import open_model_folder

    if not required and not model_dir.exists():
        return None
    return open_model_folder(model_dir)


def run(
    url: str | None = None,
    start: bool = False,
    model_dir: Path | None = None,
    data: Path = paths.TEST_DATA,
    rows: int = 20,
    expect_version: str | None = None,
    timeout: float = 30.0,
    extra_headers: Mapping[str, str] | None = None,
) -> list[str]:
    if bool(url) == start:
        raise PipelineError("smoke needs either --url URL (a running API) or --start.")
    settings = load_serving_settings()
    model_dir = model_dir or settings.model_dir
    folder = _local_folder(model_dir, required=start)
    if start:
        with LocalServer(model_dir, timeout=timeout) as server:
            print(f"smoke: local server ready in {server.start_seconds:.2f} s at {server.url}")
            passed = check_api(server.url, folder, settings, data, rows, expect_version)
    else:
        assert url is not None
        parse_url(url)
        wait_ready(url, timeout, extra_headers=extra_headers)
        passed = check_api(url, folder, settings, data, rows, expect_version, extra_headers)
    token_note = "" if settings.token else f" ({settings.token_env} not set: no token checked)"
    print(f"smoke: {len(passed)} checks passed{token_note}")
    return passed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument("--rows", type=int, default=20, help="rows of --data to send (20)")
    parser.add_argument("--expect-version", help="model version the API must serve")
