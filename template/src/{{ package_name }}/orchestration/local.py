"""Command `pipeline-local`: run the kfp pipeline here with kfp's local runner: step by
step in subprocesses of this environment (no container, no cluster, nothing installed),
outputs under data/pipeline-runs/, recording to the project's tracking store.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

from ..core import files, paths
from ..core.errors import PipelineError
from .settings import LOCAL_ROOT, load_orchestrator_settings


def run_folder(root: Path, name: str, before: set[Path]) -> Path:
    """The folder the local runner just made for the run (`<name>-<time>`)."""
    made = [p for p in root.glob(f"{name}-*") if p.is_dir() and p not in before]
    if not made:
        raise PipelineError(f"the local runner wrote no run folder under {root}")
    return max(made, key=lambda p: p.stat().st_mtime)


def run(data: Path = paths.RAW_DATA, root: Path = LOCAL_ROOT) -> dict[str, Any]:
    from kfp import local

    from .pipeline import build_pipeline, make_build

    files.require_file(data, paths.SAMPLE_DATA_HINT)
    build = make_build(load_orchestrator_settings(), data_uri=data.resolve().as_posix(), local=True)
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.iterdir())
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    pipeline = build_pipeline(build)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # The runner warns that the image may not hold Python: it runs no image here.
        warnings.filterwarnings("ignore", message=".*base image.*", category=RuntimeWarning)
        try:
            pipeline()
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise PipelineError(f"the local pipeline run failed: {first}") from None
    seconds = time.perf_counter() - start
    folder = run_folder(root, build.name, before)
    summary = (folder / "report" / "summary").read_text(encoding="utf-8")
    metrics = json.loads((folder / "evaluate" / "metrics").read_text(encoding="utf-8"))
    print(f"\n{summary}\npipeline-local: ran in {seconds:.1f} s; outputs in {folder}")
    return {"folder": folder, "seconds": seconds, "metrics": metrics, "summary": summary}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=paths.RAW_DATA, help="the raw data file")
    parser.add_argument("--root", type=Path, default=LOCAL_ROOT, help="where outputs go")
