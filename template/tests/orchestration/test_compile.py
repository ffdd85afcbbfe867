"""The pipeline compiles offline to kfp YAML, and its steps only call the stages' code."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ..package import NAME, SRC, load

cli = load("cli")
steps = load("orchestration.steps")

IMAGE = "europe-west1-docker.pkg.dev/acme/ml/trainer:abc123"
STEPS = {
    "read", "metadata", "validate", "preprocess", "train", "evaluate", "gate", "register",
    "promote", "report",
}  # fmt: skip
LEVEL_4 = (SRC / NAME / "monitoring").is_dir()  # the package has level 4's monitoring
if LEVEL_4:  # and its `profile` stage
    STEPS.add("profile")


def compiled(arguments: list[str] | None = None) -> dict:
    """Compile (for Vertex AI unless told: that needs kfp alone); the pipeline document."""
    arguments = arguments or ["--target", "vertex"]
    assert cli.main(["pipeline-compile", "--image", IMAGE, *arguments]) == 0
    return documents()[0]


def documents() -> list[dict]:
    return list(yaml.safe_load_all(Path("reports/pipeline.yaml").read_text()))


def executors(document: dict) -> dict:
    return document["deploymentSpec"]["executors"]


def test_compiles_offline_with_every_step_in_the_image(project, capsys):
    document = compiled()

    containers = {
        name.removeprefix("exec-"): spec["container"]
        for name, spec in executors(document).items()
        if "container" in spec
    }
    assert set(containers) == STEPS
    assert {container["image"] for container in containers.values()} == {IMAGE}
    assert "importer" in executors(document)["exec-importer"]
    assert "pipeline-compile:" in capsys.readouterr().out


def test_step_bodies_call_the_package_and_copy_no_logic(project):
    for name, spec in executors(compiled()).items():
        if "container" not in spec:
            continue
        source = spec["container"]["command"][-1]
        module = "report" if name == "exec-report" else "steps"
        # the body formats the package's name in: "{package}.orchestration.<module>"
        assert "{package}" + f".orchestration.{module}" in source, name
        (function,) = [node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)]
        # import importlib; module = importlib.import_module(...); one call
        assert len(function.body) == 3, f"{name} holds more than a call"
        assert not any(isinstance(node, ast.For | ast.If) for node in ast.walk(function)), name
        # kfp installs nothing at run time: the image holds the project and kfp.
        assert "pip install" not in " ".join(spec["container"]["command"]), name


def test_every_dvc_stage_is_a_pipeline_step(project):
    stages = yaml.safe_load((SRC.parent / "dvc.yaml").read_text())["stages"]
    document = compiled()
    tasks = document["components"]["comp-exit-handler-1"]["dag"]["tasks"]

    for stage in stages:
        assert callable(getattr(steps, stage, None)), f"no pipeline step for the {stage} stage"
        assert stage in tasks, f"the compiled pipeline runs no {stage} step"


def test_at_level_4_the_gate_waits_for_the_profile_logged_with_the_run(project):
    if not LEVEL_4:
        pytest.skip("level 3: no monitoring sub-package, no profile stage")
    tasks = compiled()["components"]["comp-exit-handler-1"]["dag"]["tasks"]

    profile = tasks["profile"]
    assert {"evaluate", "preprocess", "train"} <= set(profile["dependentTasks"])
    assert "profile" in tasks["gate"]["dependentTasks"]
    artifacts = profile["inputs"]["artifacts"]
    assert artifacts["train"]["taskOutputArtifact"]["producerTask"] == "preprocess"
    assert artifacts["model"]["taskOutputArtifact"]["producerTask"] == "train"


def test_the_exit_handler_gets_the_final_status_and_the_release_is_conditional(project):
    document = compiled()
    dag = document["root"]["dag"]["tasks"]

    report = dag["report"]
    assert report["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert "status" in report["inputs"]["parameters"]
    body = document["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    condition = next(task for task in body.values() if "triggerPolicy" in task)
    assert "gate" in condition["triggerPolicy"]["condition"]
    released = document["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert set(released) == {"register", "promote"}
    for task in [*body.values(), *released.values()]:
        if "cachingOptions" in task:
            assert not task["cachingOptions"].get("enableCache", False)


def test_kubeflow_steps_get_the_kubernetes_secret_as_environment(project):
    pytest.importorskip("kfp.kubernetes", reason="kfp-kubernetes, for Kubeflow's secrets")
    compiled(["--target", "kubeflow"])
    platform = documents()[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]

    secret = platform["exec-train"]["secretAsEnv"][0]
    assert secret["secretName"] == f"{NAME.replace('_', '-')}-pipeline"
    assert secret["optional"] is True
    assert {pair["envVar"] for pair in secret["keyToEnv"]} >= {"MLFLOW_TRACKING_URI"}


def test_vertex_pipelines_carry_no_kubernetes_settings(project):
    compiled(["--target", "vertex"])

    assert len(documents()) == 1


def test_listing_the_commands_imports_no_orchestration_library():
    code = (
        "import sys\n"
        f"from {NAME} import cli\n"
        "cli.build_parser(cli.registered_commands())\n"
        "print(sorted(m for m in ('kfp', 'google.cloud.aiplatform') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
