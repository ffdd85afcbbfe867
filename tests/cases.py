"""The answer cases: every level x CI provider cell, with the other answers cycled.

The answers that do not interact with the level or the provider (licence,
Python version, data remote, project name) are cycled across the cells, so
every value appears, and the first cell is the pure defaults (the README's
main command). Ids read like the answers: `l2-gitlab-py313-apache-s3`.

Every cell is generated and checked cheaply (test_invariants.py). Its own CI
runs end to end in test_generated_ci.py: the REPRESENTATIVE cells on every
run of `.ci/run`, every other cell in the template's scheduled workflow
(`FULL_MATRIX=1`, docs/testing.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

LEVELS = (1, 2, 3, 4)
PROVIDERS = ("github", "gitlab", "none")
# Defaults first: cell 0 answers nothing at all.
PYTHONS = ("3.12", "3.11", "3.13")
LICENSES = ("MIT", "Apache-2.0", "Proprietary")
REMOTES = ("local", "s3", "gcs")
NAMES = (None, "Churn Prediction", "Prévision des Ventes Été")
DEPLOY_TARGETS = ("container", "cloud-run", "kubernetes")  # level 3 and up
ORCHESTRATORS = ("local", "kubeflow", "vertex")  # level 3 and up

DEFAULT_ANSWERS = {
    "deploy_target": DEPLOY_TARGETS[0],
    "orchestrator": ORCHESTRATORS[0],
    "python_version": PYTHONS[0],
    "license": LICENSES[0],
    "data_remote": REMOTES[0],
    "ci": PROVIDERS[0],
    "level": LEVELS[0],
}
SHORT = {"MIT": "mit", "Apache-2.0": "apache", "Proprietary": "proprietary"}


@dataclass(frozen=True)
class Case:
    level: int
    ci: str
    python_version: str
    license: str
    data_remote: str
    project_name: str | None
    answers: dict = field(compare=False)
    deploy_target: str | None = None
    orchestrator: str | None = None

    @property
    def id(self) -> str:
        python = self.python_version.replace(".", "")
        case_id = f"l{self.level}-{self.ci}-py{python}-{SHORT[self.license]}-{self.data_remote}"
        if self.deploy_target:
            case_id += f"-{self.deploy_target}-{self.orchestrator}"
        return case_id

    @property
    def marks(self) -> list[pytest.MarkDecorator]:
        return [getattr(pytest.mark, f"level{self.level}")]

    def param(self, *, end_to_end: bool = False) -> object:
        marks = list(self.marks)
        if end_to_end and self.id not in REPRESENTATIVE:
            marks.append(pytest.mark.full_matrix)
        return pytest.param(self, id=self.id, marks=marks)


def build_cases() -> list[Case]:
    cases = []
    for level_index, level in enumerate(LEVELS):
        for provider_index, ci in enumerate(PROVIDERS):
            index = level_index * len(PROVIDERS) + provider_index
            # Shift each cycle by the level so a provider meets every value.
            values = {
                "level": level,
                "ci": ci,
                "python_version": PYTHONS[(provider_index + level_index) % len(PYTHONS)],
                "license": LICENSES[(provider_index + 2 * level_index) % len(LICENSES)],
                "data_remote": REMOTES[index % len(REMOTES)],
            }
            if level >= 3:
                values["deploy_target"] = DEPLOY_TARGETS[provider_index % len(DEPLOY_TARGETS)]
                values["orchestrator"] = ORCHESTRATORS[provider_index % len(ORCHESTRATORS)]
            name = NAMES[index % len(NAMES)]
            answers = {k: v for k, v in values.items() if DEFAULT_ANSWERS[k] != v}
            if name is not None:
                answers["project_name"] = name
            cases.append(Case(project_name=name, answers=answers, **values))
    return cases


CASES = build_cases()
BY_ID = {case.id: case for case in CASES}

# Run end to end on every `.ci/run`: every provider, every Python version,
# every level, a cluster orchestrator, and the pure defaults. A cell runs the
# checks of its level and of every level below it. Level 4 with its defaults
# (the CI runner as orchestrator, GitHub) runs its CI on every `.ci/run` in the
# update from the previous release (tests/test_upgrade.py), and by act in the
# scheduled workflow (time: `.ci/run` took 38 minutes of pytest with it).
REPRESENTATIVE = (
    "l1-github-py312-mit-local",
    "l1-gitlab-py311-apache-s3",
    "l1-none-py313-proprietary-gcs",
    "l2-none-py312-apache-gcs",
    "l3-gitlab-py312-proprietary-s3-cloud-run-kubeflow",
    "l4-gitlab-py311-apache-s3-cloud-run-kubeflow",
)


def params(*, end_to_end: bool = False) -> list[object]:
    return [case.param(end_to_end=end_to_end) for case in CASES]


# Every deploy target x orchestrator x CI provider at level 3: each is generated
# and its file set and CI files checked (test_invariants.py); all of them run
# end to end in the full matrix only.
DELIVERY_COMBINATIONS = [
    Case(
        level=3, ci=ci, python_version=PYTHONS[0], license=LICENSES[0],
        data_remote=REMOTES[0], project_name=None, deploy_target=target,
        orchestrator=orchestrator,
        answers={"level": 3, "ci": ci, "deploy_target": target, "orchestrator": orchestrator},
    )
    for target in DEPLOY_TARGETS
    for orchestrator in ORCHESTRATORS
    for ci in PROVIDERS
]  # fmt: skip
