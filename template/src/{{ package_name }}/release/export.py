"""Command `export`: write the model folder the serving API loads and the image holds.

The champion (or `--version N`) with its run's metadata, data contract and logged
files (every artifact folder but `model/` and `settings/`); or, with `--candidate`,
the model just trained, unregistered. The folder is checked before it replaces the
previous one, on the test split, or on a fresh runner without the data, on rows
drawn within the data contract.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..core import files, git, paths
from ..core.canvas import Canvas, load_canvas
from ..core.errors import PipelineError
from ..core.params import Params, load_params
from ..serving.model_folder import describe_model, write_model_folder
from ..serving.settings import load_serving_settings
from .gate import recorded_features, test_rows

if TYPE_CHECKING:
    import pandas as pd

CONTRACT_ROWS = 200


class Chosen(NamedTuple):
    pipeline: Any
    metadata: dict[str, Any]
    canvas: Canvas
    files: tuple[Path, ...] = ()


def candidate_metadata(params: Params, canvas: Canvas, model_path: Path) -> dict[str, Any]:
    md5 = files.md5_of(model_path)
    data = files.md5_of(paths.RAW_DATA) if paths.RAW_DATA.is_file() else "missing"
    return describe_model(
        params,
        canvas,
        version=f"candidate-{md5[:8]}",
        run_id="unregistered",
        git_commit=git.commit(),
        data_version=data,
    )


def trained_canvas(client: Any, run_id: str, current: Canvas) -> Canvas:
    """The canvas.yaml the run was trained under (the current one if not recorded)."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(run_id, "settings/canvas.yaml", folder)
        except Exception:  # an older run without it: say which contract is used
            print("export: the run recorded no canvas.yaml: using the current data contract")
            return current
        return load_canvas(Path(path))


def run_files(client: Any, run_id: str, folder: Path) -> tuple[Path, ...]:
    """The files logged with a run to travel with its model, downloaded into `folder`."""
    found: list[Path] = []
    for entry in client.list_artifacts(run_id):
        if entry.is_dir and entry.path not in ("model", "settings"):
            local = Path(client.download_artifacts(run_id, entry.path, str(folder)))
            found += sorted(path for path in local.rglob("*") if path.is_file())
    return tuple(found)


def candidate_files(params: Params, model_path: Path, folder: Path) -> tuple[Path, ...]:
    """The files logged with the model's tracked run; none when tracking is off or has no run."""
    from ..tracking import record
    from .register import run_of_model

    uri = params.tracking.effective_uri
    if not params.tracking.enabled or record.missing_store(uri):
        return ()
    try:
        client = record.client(uri)
        run_id = run_of_model(client, params.tracking.experiment, files.md5_of(model_path))
        return run_files(client, run_id, folder)
    except Exception as error:  # no tracked run, or the store did not answer: the model alone
        first = (str(error).strip() or repr(error)).splitlines()[0]
        print(f"export: the folder goes without the files of a tracked run ({first})")
        return ()


def registry_model(version: str | None, params_path: Path, downloads: Path) -> Chosen:
    """A registered version (the champion by default), its logged files put in `downloads`."""
    from . import registry

    client, name = registry.open_model(params_path)
    params = load_params(params_path)
    if version is None:
        chosen = registry.version_with_alias(client, name, registry.CHAMPION)
        if chosen is None:
            raise PipelineError(
                f"model {name!r} has no champion to export: promote one (`uv run poe "
                "promote`), pass --version N, or --candidate for the model just trained"
            )
    else:
        chosen = registry.model_version(client, name, version)
    run = client.get_run(chosen.run_id)
    canvas = trained_canvas(client, chosen.run_id, load_canvas(paths.CANVAS))
    trained_at = datetime.fromtimestamp(run.info.start_time / 1000, UTC)
    metadata = describe_model(
        params,
        canvas,
        version=str(chosen.version),
        run_id=chosen.run_id,
        git_commit=run.data.tags.get("git_commit", "unknown"),
        data_version=run.data.params.get("data_md5", "unknown"),
        trained_at=trained_at.isoformat(timespec="seconds"),
    )
    recorded = run.data.params
    numeric, categorical = recorded_features(recorded)
    metadata["features"] = {"numeric": numeric, "categorical": categorical}
    metadata["target"] = recorded.get("features.target", params.features.target)
    metadata["registry"] = {"name": name, "aliases": sorted(chosen.aliases)}
    pipeline = registry.load_version_model(name, str(chosen.version))
    return Chosen(pipeline, metadata, canvas, run_files(client, chosen.run_id, downloads))


def contract_rows(canvas: Canvas, count: int = CONTRACT_ROWS, seed: int = 0) -> pd.DataFrame:
    """`count` rows drawn at random within the data contract (seeded: the same rows each time)."""
    import math

    import numpy as np
    import pandas as pd

    random = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for name, rule in canvas.data_contract.columns.items():
        if rule.allowed:
            picked = random.integers(len(rule.allowed), size=count)
            columns[name] = [rule.allowed[i] for i in picked]
        elif rule.type == "category":  # any text is valid
            columns[name] = [f"value-{i}" for i in random.integers(5, size=count)]
        else:
            low = rule.min if rule.min is not None else (rule.max or 0.0) - 1.0
            high = rule.max if rule.max is not None else low + 1.0
            if rule.type == "int":
                columns[name] = random.integers(math.ceil(low), math.floor(high) + 1, size=count)
            else:
                columns[name] = random.uniform(low, high, size=count)
    return pd.DataFrame(columns)


def rows_to_check(interim_path: Path, params: Params, canvas: Canvas) -> pd.DataFrame:
    """The test split when the data is here; else rows drawn within the data contract."""
    if interim_path.is_file():
        return test_rows(interim_path, params)
    features = [*params.features.numeric, *params.features.categorical]
    undescribed = [name for name in features if name not in canvas.data_contract.columns]
    if undescribed:
        raise PipelineError(
            f"{interim_path} is missing and the data contract does not describe "
            f"{', '.join(undescribed)}: {paths.READ_STAGE_HINT}"
        )
    print(
        f"export: no {interim_path} here (a fresh runner): the fast path is checked on "
        f"{CONTRACT_ROWS} rows drawn within the data contract"
    )
    return contract_rows(canvas)


def run(
    version: str | None = None,
    candidate: bool = False,
    out: Path | None = None,
    params_path: Path = paths.PARAMS,
    canvas_path: Path = paths.CANVAS,
    model_path: Path = paths.MODEL,
    interim_path: Path = paths.INTERIM_DATA,
) -> Path:
    import joblib

    params = load_params(params_path)
    folder = out or load_serving_settings().model_dir
    with tempfile.TemporaryDirectory() as downloads:
        if candidate:
            files.require_file(model_path, "run the pipeline first (`uv run poe pipeline`)")
            canvas = load_canvas(canvas_path)
            metadata = candidate_metadata(params, canvas, model_path)
            carried = candidate_files(params, model_path, Path(downloads))
            chosen = Chosen(joblib.load(model_path), metadata, canvas, carried)
        else:
            chosen = registry_model(version, params_path, Path(downloads))
        rows = rows_to_check(interim_path, params, chosen.canvas)
        written = write_model_folder(
            folder, chosen.pipeline, chosen.metadata, rows, extra_files=chosen.files
        )
    fast = written.get("fast_path", {})
    how = "with the ONNX fast path"
    if not fast.get("used"):
        how = f"without fast path ({fast.get('reason')})"
    name, version = chosen.metadata["name"], chosen.metadata["version"]
    print(f"export: {name} version {version} -> {folder}, {how}")
    return folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--version", help="a registered version (default: the champion)")
    chosen.add_argument(
        "--candidate", action="store_true", help="the model the pipeline just trained"
    )
    parser.add_argument("--out", type=Path, help="the folder to write (default: deploy.yaml's)")
