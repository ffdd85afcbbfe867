"""The training pipeline as Kubeflow Pipelines (kfp v2) steps, built on demand.

    importer(data_uri) -> read -> metadata
                               -> validate -> preprocess -> train -> evaluate
                                  [-> profile] -> gate -> if passed: register -> promote
    exit handler: report (the verdict or the failure; the deploy trigger)

Each step is a lightweight component whose body calls steps.py, which calls the
stage's own `run(...)`. `profile` (level 4) is there when the package has its
monitoring sub-package. The raw data enters through an importer: by default the DVC
remote's copy at the version git records. Every step runs in one image
(`orchestrator.image`) that has kfp (docs/orchestration.md).

No `from __future__ import annotations`: kfp reads the steps' annotations as objects.
"""

import configparser
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.errors import PipelineError
from ..core.settings import read_yaml
from . import steps
from .settings import PACKAGE, OrchestratorSettings

DVC_FOLDER = Path(".dvc")
REMOTE_SECTION = re.compile(r"""^'?remote\s+"(?P<name>[^"]+)"'?$""")


@dataclass(frozen=True)
class Build:
    """What a compiled pipeline is made of, fixed at compile time."""

    name: str
    image: str
    commit: str
    data_uri: str
    deploy_url: str
    deploy_ref: str
    secret_source: str  # "" or "gcp:<project>": see secrets.py
    secret_names: tuple[str, ...]
    kubernetes_secret: str | None = None

    @property
    def context(self) -> str:
        return steps.context(self.commit, self.secret_source, list(self.secret_names))


def dvc_remote_url() -> str | None:
    """The default DVC remote's URL (.dvc/config, then config.local); None without one."""
    config = configparser.ConfigParser(interpolation=None)
    config.read([DVC_FOLDER / "config", DVC_FOLDER / "config.local"], encoding="utf-8")
    name = config.get("core", "remote", fallback=None)
    for section in config.sections():
        match = REMOTE_SECTION.match(section)
        if name and match and match["name"] == name:
            return config.get(section, "url", fallback=None)
    return None


def dvc_data_uri(raw: Path = paths.RAW_DATA) -> str | None:
    """Where the DVC remote keeps the version of `raw` that git records (DVC 3 layout)."""
    pointer = raw.with_name(raw.name + ".dvc")
    url = dvc_remote_url()
    if not pointer.is_file() or url is None:
        return None
    outs = read_yaml(pointer).get("outs") or [{}]
    md5 = str(outs[0].get("md5", ""))
    if not re.fullmatch(r"[0-9a-f]{32}", md5):
        return None
    if not re.match(r"^[a-z0-9]+://", url):  # a local remote: relative to .dvc/
        url = (DVC_FOLDER / url).resolve().as_posix()
    return f"{url.rstrip('/')}/files/md5/{md5[:2]}/{md5[2:]}"


def default_data_uri(settings: OrchestratorSettings) -> str:
    """`orchestrator.data_uri`, else the DVC remote's copy, else the local file."""
    return settings.data_uri or dvc_data_uri() or paths.RAW_DATA.resolve().as_posix()


def make_build(
    settings: OrchestratorSettings,
    *,
    image: str | None = None,
    data_uri: str | None = None,
    commit: str | None = None,
    local: bool = False,
) -> Build:
    """Fix what the compiled pipeline holds; `local`: for kfp's local runner (no secrets)."""
    commit = commit or steps.commit_from_environment()
    deploy_url, deploy_ref = settings.deploy_trigger()
    secret_source, kubernetes_secret = "", None
    if not local and settings.target == "vertex" and settings.vertex.project:
        secret_source = f"gcp:{settings.vertex.project}"
    if not local and settings.target == "kubeflow":
        kubernetes_secret = settings.kubeflow.secret or f"{settings.pipeline_name}-pipeline"
    return Build(
        name=settings.pipeline_name,
        image=image or settings.pipeline_image(commit),
        commit=commit,
        data_uri=data_uri or default_data_uri(settings),
        deploy_url=deploy_url or "",
        deploy_ref=deploy_ref,
        secret_source=secret_source,
        secret_names=settings.secrets,
        kubernetes_secret=kubernetes_secret,
    )


def _components(image: str) -> dict[str, Any]:
    """The steps as kfp components; each body imports the package and calls steps.py."""
    from kfp import dsl
    from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

    component = dsl.component(base_image=image, install_kfp_package=False)

    def read(package: str, run_context: str, raw: Input[Dataset], interim: Output[Dataset]):
        import importlib

        steps = importlib.import_module(f"{package}.orchestration.steps")
        steps.run_stage(run_context, "pipeline.read", raw_path=raw.path, out_path=interim.path)

    def metadata(
        package: str,
        run_context: str,
        raw: Input[Dataset],
        interim: Input[Dataset],
        report: Output[Artifact],
    ):
        import importlib

        steps = importlib.import_module(f"{package}.orchestration.steps")
        steps.run_stage(
            run_context,
            "pipeline.metadata",
            data_path=interim.path,
            raw_path=raw.path,
            out_path=report.path,
        )

    def validate(package: str, run_context: str, interim: Input[Dataset], report: Output[Artifact]):
        import importlib

        steps = importlib.import_module(f"{package}.orchestration.steps")
        steps.run_stage(
            run_context, "pipeline.validate", data_path=interim.path, out_path=report.path
        )

    def preprocess(
        package: str,
        run_context: str,
        interim: Input[Dataset],
        validation: Input[Artifact],  # only a pass writes it: validation gates training
        train: Output[Dataset],
        test: Output[Dataset],
    ):
        import importlib

        steps = importlib.import_module(f"{package}.orchestration.steps")
        steps.run_stage(
            run_context,
            "pipeline.preprocess",
            data_path=interim.path,
            train_path=train.path,
            test_path=test.path,
        )

    def train(package: str, run_context: str, train: Input[Dataset], model: Output[Model]):
        import importlib

        steps = importlib.import_module(f"{package}.orchestration.steps")
        steps.run_stage(run_context, "pipeline.train", train_path=train.path, model_path=model.path)

    def evaluate(
        package: str,
        run_context: str,
        job: str,
        model: Input[Model],
        test: Input[Dataset],
        raw: Input[Dataset],
        metrics: Output[Metrics],
        roc: Output[Dataset],
        confusion: Output[Dataset],
    ):
        import importlib

        steps = importlib.import_module(f"{package}.orchestration.steps")
        steps.evaluate(
            run_context,
            job,
            model.path,
            test.path,
            raw.path,
            metrics.path,
            roc.path,
            confusion.path,
            metrics.log_metric,  # the numbers the Vertex AI / Kubeflow UI shows
        )

    def profile(
        package: str,
        run_context: str,
        train: Input[Dataset],
        raw: Input[Dataset],
        model: Input[Model],
        reference: Output[Artifact],
    ):
        import importlib

        steps = importlib.import_module(f"{package}.orchestration.steps")
        steps.profile(run_context, train.path, raw.path, model.path, reference.path)

    def gate(
        package: str,
        run_context: str,
        job: str,
        model: Input[Model],
        interim: Input[Dataset],
        report: Output[Artifact],
        summary: Output[Markdown],
    ) -> bool:
        import importlib

        steps = importlib.import_module(f"{package}.orchestration.steps")
        return steps.gate(run_context, job, model.path, interim.path, report.path, summary.path)

    def register(
        package: str, run_context: str, model: Input[Model], report: Input[Artifact]
    ) -> str:
        import importlib

        steps = importlib.import_module(f"{package}.orchestration.steps")
        return steps.run_stage(
            run_context, "release.register", model_path=model.path, report_path=report.path
        )

    def promote(package: str, run_context: str, job: str, version: str) -> str:
        import importlib

        steps = importlib.import_module(f"{package}.orchestration.steps")
        return steps.promote(run_context, job, version)

    def report(
        package: str,
        run_context: str,
        job: str,
        pipeline: str,
        deploy_url: str,
        deploy_ref: str,
        status: dsl.PipelineTaskFinalStatus,
        summary: Output[Markdown],
    ):
        import importlib

        report = importlib.import_module(f"{package}.orchestration.report")
        report.run(
            run_context,
            job,
            status.state,
            status.error_message,
            pipeline,
            deploy_url,
            deploy_ref,
            summary.path,
        )

    functions: list[Callable[..., Any]] = [read, metadata, validate, preprocess, train]
    functions += [evaluate, profile, gate, register, promote, report]
    return {function.__name__: component(function) for function in functions}


def build_pipeline(build: Build) -> Any:
    """The kfp pipeline function (compile it, or call it under kfp.local)."""
    from kfp import dsl
    from kfp.dsl import Dataset

    step = _components(build.image)
    common = {"package": PACKAGE, "run_context": build.context}
    job = dsl.PIPELINE_JOB_ID_PLACEHOLDER

    @dsl.pipeline(
        name=build.name,
        description=f"{PACKAGE}: the DVC stages, the gate, registration and promotion",
    )
    def training(
        data_uri: str = build.data_uri,
        deploy_url: str = build.deploy_url,
        deploy_ref: str = build.deploy_ref,
    ):
        exit_task = step["report"](
            **common, job=job, pipeline=build.name, deploy_url=deploy_url, deploy_ref=deploy_ref
        )
        tasks = [exit_task]
        with dsl.ExitHandler(exit_task, name="train-gate-promote"):
            raw = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset, reimport=False)
            raw.set_display_name("raw-data")
            read = step["read"](**common, raw=raw.output)
            interim = read.outputs["interim"]
            metadata = step["metadata"](**common, raw=raw.output, interim=interim)
            validate = step["validate"](**common, interim=interim)
            preprocess = step["preprocess"](
                **common, interim=interim, validation=validate.outputs["report"]
            )
            train = step["train"](**common, train=preprocess.outputs["train"])
            model = train.outputs["model"]
            evaluate = step["evaluate"](
                **common, job=job, model=model, test=preprocess.outputs["test"], raw=raw.output
            )
            gate = step["gate"](**common, job=job, model=model, interim=interim)
            gate.after(evaluate)  # the gate tags the run evaluate records
            tasks += [read, metadata, validate, preprocess, train, evaluate, gate]
            if steps.profiles_training_data():  # level 4
                profile = step["profile"](
                    **common, train=preprocess.outputs["train"], raw=raw.output, model=model
                )
                profile.after(evaluate)  # it logs the profile with the run evaluate records
                gate.after(profile)  # a promoted model has its reference profile
                tasks.append(profile)
            with dsl.If(gate.outputs["Output"] == True, name="gate-passed"):  # noqa: E712
                register = step["register"](**common, model=model, report=gate.outputs["report"])
                promote = step["promote"](**common, job=job, version=register.output)
                tasks += [register, promote]
        for task in [raw, *tasks]:
            # Steps read settings baked in the image and write to the registry:
            # a cached result could belong to other settings or skip a record.
            task.set_caching_options(False)
        if build.kubernetes_secret:
            _secret_as_environment(tasks, build.kubernetes_secret, build.secret_names)

    return training


def _secret_as_environment(tasks: list[Any], secret: str, names: tuple[str, ...]) -> None:
    """Kubeflow: every step gets the secret's keys (optional ones) as environment variables."""
    try:
        from kfp import kubernetes
    except ImportError:
        raise PipelineError(
            "mapping a Kubernetes secret needs kfp-kubernetes "
            "(the `orchestration` dependency group: `uv sync --group orchestration`)"
        ) from None
    for task in tasks:
        kubernetes.use_secret_as_env(
            task,
            secret_name=secret,
            secret_key_to_env={name: name for name in names},
            optional=True,
        )


def compile_pipeline(build: Build, out: Path) -> Path:
    """Write the pipeline as kfp's YAML (IR); no network, no credentials."""
    import tempfile

    from kfp import compiler

    from ..core import files

    # kfp names the format by the file's suffix: compile beside, then replace at once.
    with tempfile.TemporaryDirectory() as folder:
        compiled = Path(folder) / "pipeline.yaml"
        compiler.Compiler().compile(build_pipeline(build), str(compiled))
        files.write_text(out, compiled.read_text(encoding="utf-8"))
    return out
