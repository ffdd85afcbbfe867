"""What git says about the working tree. Every call is safe outside a git
repository or without git: it returns a value that says so instead of failing."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping

NO_COMMIT = "uncommitted"  # a repository without any commit yet, or no repository

# CI variables naming the branch a change will merge into, in priority order.
TARGET_BRANCH_VARIABLES = (
    "GITHUB_BASE_REF",  # GitHub Actions, pull requests
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",  # GitLab CI, merge requests
    "DEFAULT_BRANCH",  # set by the generated GitHub workflows on pushes
    "CI_DEFAULT_BRANCH",  # GitLab CI, other pipelines
)


def git(*args: str, timeout: float = 30) -> str | None:
    """git's output, stripped; None when git fails or cannot run at all."""
    try:
        result = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def commit() -> str:
    return git("rev-parse", "HEAD") or NO_COMMIT


def has_local_changes() -> bool:
    """True when tracked files differ from the commit (or there is no commit)."""
    return commit() == NO_COMMIT or git("status", "--porcelain", "--untracked-files=no") != ""


def resolves(ref: str) -> bool:
    return bool(git("rev-parse", "--verify", "--quiet", ref + "^{commit}"))


def comparison_base(environ: Mapping[str, str] = os.environ) -> str:
    """The CI's target branch, else the default branch whatever its name: origin's HEAD,
    else main or master, else the current branch (preferring origin's copy of each)."""
    for variable in TARGET_BRANCH_VARIABLES:
        if environ.get(variable, "").strip():
            return f"origin/{environ[variable].strip()}"
    current = git("branch", "--show-current")
    candidates = [git("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")]
    candidates += ["origin/main", "main", "origin/master", "master"]
    candidates += [f"origin/{current}", current] if current else []
    return next((ref for ref in candidates if ref and resolves(ref)), current or "main")


def fetch(remote_ref: str) -> bool:
    """Fetch `origin/<branch>` when a CI checkout lacks it (GitLab fetches one branch)."""
    remote, _, branch = remote_ref.partition("/")
    if remote != "origin" or not branch:
        return False
    fetched = git("fetch", "-q", "origin", f"+{branch}:refs/remotes/origin/{branch}", timeout=120)
    return fetched is not None and resolves(remote_ref)
