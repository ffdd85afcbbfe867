"""What git says about the working tree: commit, local changes, default branch.

Every call is safe outside a git repository or without git installed: it
returns a value that says so instead of failing.
"""

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


def git(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str] | None:
    """Run git; None when git cannot run at all."""
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None


def _output(*args: str) -> str | None:
    result = git(*args)
    if result is None or result.returncode != 0:
        return None
    return result.stdout.strip() or None


def commit() -> str:
    """The commit checked out, or NO_COMMIT."""
    return _output("rev-parse", "HEAD") or NO_COMMIT


def has_local_changes() -> bool:
    """True when tracked files differ from the commit (or there is no commit)."""
    if commit() == NO_COMMIT:
        return True
    result = git("status", "--porcelain", "--untracked-files=no")
    return result is None or result.returncode != 0 or bool(result.stdout.strip())


def resolves(ref: str) -> bool:
    """True when git knows the ref as a commit."""
    return _output("rev-parse", "--verify", "--quiet", ref + "^{commit}") is not None


def default_branch() -> str | None:
    """The repository's default branch: origin's HEAD, else main or master, else the current one."""
    remote_head = _output("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
    if remote_head:
        return remote_head.removeprefix("origin/")
    for branch in ("main", "master"):
        if resolves(f"origin/{branch}") or resolves(branch):
            return branch
    return _output("branch", "--show-current")


def comparison_base(environ: Mapping[str, str] = os.environ) -> str:
    """The ref a change is compared with: the CI's target branch, else the default branch."""
    for variable in TARGET_BRANCH_VARIABLES:
        branch = environ.get(variable, "").strip()
        if branch:
            return f"origin/{branch}"
    branch = default_branch() or "main"
    return f"origin/{branch}" if resolves(f"origin/{branch}") else branch


def fetch(remote_ref: str) -> bool:
    """Fetch `origin/<branch>` when a CI checkout lacks it (GitLab fetches one branch)."""
    remote, _, branch = remote_ref.partition("/")
    if remote != "origin" or not branch:
        return False
    result = git(
        "fetch", "--quiet", "origin", f"+{branch}:refs/remotes/origin/{branch}", timeout=120
    )
    return result is not None and result.returncode == 0 and resolves(remote_ref)
