"""Prove that a default level-3 project's container builds and serves, on a machine
that has no Docker registry access.

    uv run python .ci/docker_proof.py [--cache-dir DIR] [--keep] [--fresh]

Linux, as root, with apt-get (Debian or Ubuntu). What it does, in order:

1. installs Debian's docker.io, docker-compose and debootstrap when missing;
2. starts a private dockerd (its own socket, data root and pid file; no bridge,
   iptables or masquerading), so it touches no other Docker on the machine;
3. makes the base image that `FROM python:X.Y-slim-bookworm` would pull: a
   Debian bookworm minbase (debootstrap) with the host's build of the project's
   Python copied to /usr/local and the host's CA bundle (the package index may
   sit behind a TLS-inspecting proxy), imported with `docker import`;
4. generates a default level-3 project from a commit of this working tree,
   runs its pipeline and `poe export-candidate` (models/serving/);
5. builds the generated Dockerfile with BuildKit (`--network host`: the build
   installs from PyPI), `--build-arg BASE=<that base>`;
6. runs it with the generated compose.yaml (read-only root, tmpfs /tmp, no
   capabilities, port on 127.0.0.1, the token from the environment), waits for
   /ready, runs the project's own `smoke --url` against it (token included),
   checks the user is numeric and not root, the root filesystem is read-only,
   no dev tool is installed, the labels carry the model version and commit,
   the HEALTHCHECK turns healthy and `docker stop` ends the server cleanly;
7. stops everything and removes what it made, except the cache.

The cache (default ~/.cache/mlops-ladder/docker-proof) keeps the debootstrap
tarball, the base image tarball and dockerd's data root (base image and
BuildKit cache), so a second run skips steps 1 and 3 and the dependency
layer of the build. `--fresh` empties it first.

Exit status: 0 when every check passed, 1 when one failed, 2 when the machine
cannot run the proof (not Linux, not root, no apt-get).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
DEFAULT_CACHE = DEFAULT_CACHE / "mlops-ladder" / "docker-proof"

# Change this to rebuild every cached base (a change in how it is made).
BASE_RECIPE = "1"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What python:X.Y-slim-bookworm's interpreter links against, beyond minbase.
BASE_PACKAGES = (
    "ca-certificates",
    "libbz2-1.0",
    "libexpat1",
    "libffi8",
    "liblzma5",
    "libncursesw6",
    "libreadline8",
    "libsqlite3-0",
    "libssl3",
    "libuuid1",
    "netbase",
    "tzdata",
    "zlib1g",
)
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The modules a python:slim image provides and a server may need.
PYTHON_CHECK = (
    "import sys, ssl, sqlite3, ctypes, uuid, lzma, bz2, zlib, pyexpat, decimal, zoneinfo, "
    "hashlib, readline, curses; "
    "ssl.create_default_context().load_verify_locations('/etc/ssl/certs/ca-certificates.crt'); "
    "print(sys.version.split()[0])"
)
DEV_TOOLS = ("pytest", "mlflow", "dvc", "skl2onnx", "schemathesis", "mypy", "ruff", "uv", "pip")
SERVING = ("fastapi", "uvicorn", "onnxruntime")
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "docker proof",
    "GIT_AUTHOR_EMAIL": "proof@example.com",
    "GIT_COMMITTER_NAME": "docker proof",
    "GIT_COMMITTER_EMAIL": "proof@example.com",
}


class ProofFailed(Exception):
    """A check failed: the message says which and why."""


class Unsupported(Exception):
    """This machine cannot run the proof."""


# ---------------------------------------------------------------------------
# Small helpers


class Timings:
    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self.started = time.monotonic()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        print(f"\n== {name}", flush=True)
        start = time.monotonic()
        try:
            yield
        finally:
            elapsed = time.monotonic() - start
            self.steps.append((name, elapsed))
            print(f"== {name}: {elapsed:.1f} s", flush=True)

    def table(self) -> str:
        rows = [f"| {name} | {seconds:.1f} |" for name, seconds in self.steps]
        total = time.monotonic() - self.started
        return "\n".join(["| step | seconds |", "|---|---:|", *rows, f"| total | {total:.1f} |"])


def run(
    command: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    check: bool = True,
    timeout: float = 1800,
    quiet: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run a command; its output goes to `log` (tail shown on failure) or is captured."""
    if not quiet:
        print("$ " + " ".join(command), flush=True)
    environment = {**os.environ, **(env or {})}
    if log is None:
        result = subprocess.run(
            command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
        )
        output = result.stdout + result.stderr
    else:
        with log.open("a", encoding="utf-8") as stream:
            stream.write("$ " + " ".join(command) + "\n")
            stream.flush()
            result = subprocess.run(
                command,
                cwd=cwd,
                env=environment,
                stdout=stream,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
            )
        output = log.read_text(encoding="utf-8", errors="replace")
    if check and result.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-40:])
        raise ProofFailed(f"`{' '.join(command)}` exited {result.returncode}:\n{tail}")
    return result


def sha256_of(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)
    except OSError:
        return None


def wait_for(what: str, test: Callable[[], bool], timeout: float, interval: float = 0.5) -> float:
    """Call `test` until it returns true; the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if test():
            return time.monotonic() - start
        time.sleep(interval)
    raise ProofFailed(f"{what}: not within {timeout:.0f} s")


def ok(message: str) -> None:
    print(f"ok  {message}", flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ProofFailed(message)
    ok(message)


# ---------------------------------------------------------------------------
# Tools and the private Docker daemon


def require_machine() -> None:
    if sys.platform != "linux":
        raise Unsupported("the proof needs Linux (dockerd, debootstrap, chroot)")
    if os.geteuid() != 0:
        raise Unsupported("the proof needs root (dockerd, debootstrap, chroot)")
    if not shutil.which("apt-get") and not all(
        shutil.which(tool) for tool in ("dockerd", "debootstrap")
    ):
        raise Unsupported("the proof installs docker.io and debootstrap with apt-get: none here")


def compose_command(docker: str) -> list[str] | None:
    if shutil.which("docker-compose"):
        return [shutil.which("docker-compose") or "docker-compose"]
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    return [docker, "compose"] if probe.returncode == 0 else None


def ensure_tools(log: Path) -> dict[str, object]:
    """dockerd, its docker client, a compose, debootstrap: installed when missing."""
    missing = [
        package
        for package, present in (
            ("docker.io", shutil.which("dockerd")),
            ("debootstrap", shutil.which("debootstrap")),
        )
        if not present
    ]
    dockerd = shutil.which("dockerd")
    docker = str(Path(dockerd).parent.parent / "bin" / "docker") if dockerd else None
    if docker is None or not Path(docker).exists():
        docker = shutil.which("docker")
    if not docker or compose_command(docker) is None:
        missing.append("docker-compose")
    if not Path("/usr/share/keyrings/debian-archive-keyring.gpg").exists():
        missing.append("debian-archive-keyring")  # debootstrap of Debian from Ubuntu
    if missing:
        print(f"installing {' '.join(missing)} with apt-get", flush=True)
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update", "-qq"], env=env, log=log)
        run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            env=env,
            log=log,
        )
        dockerd = shutil.which("dockerd")
        docker = str(Path(dockerd).parent.parent / "bin" / "docker") if dockerd else None
    if not dockerd or not docker or not Path(docker).exists():
        raise Unsupported("dockerd and its docker client are not installed")
    compose = compose_command(docker)
    if compose is None:
        raise Unsupported("neither docker-compose nor `docker compose` is installed")
    return {"dockerd": dockerd, "docker": docker, "compose": compose, "installed": missing}


class Daemon:
    """A dockerd of our own: its socket and exec root in `run_dir`, data in `cache`."""

    def __init__(self, dockerd: str, docker: str, cache: Path, run_dir: Path) -> None:
        self.dockerd = dockerd
        self.docker = docker
        self.data_root = cache / "docker"
        self.pidfile = cache / "dockerd.pid"
        self.exec_root = run_dir / "exec"
        self.socket = run_dir / "docker.sock"
        self.log = run_dir / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {"DOCKER_HOST": f"unix://{self.socket}", "DOCKER_BUILDKIT": "1"}

    def start(self) -> None:
        if self.pidfile.exists():
            pid = self.pidfile.read_text().strip()
            if pid.isdigit() and Path(f"/proc/{pid}").exists():
                raise ProofFailed(
                    f"a dockerd of an earlier proof (pid {pid}) still uses {self.data_root}: "
                    f"stop it (kill {pid}) and run again"
                )
            self.pidfile.unlink()
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        command = [
            self.dockerd,
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.pidfile}",
            f"--host=unix://{self.socket}",
            # Should a system containerd be running, keep out of its namespaces.
            "--containerd-namespace=docker-proof",
            "--containerd-plugins-namespace=docker-proof-plugins",
        ]
        print("$ " + " ".join(command), flush=True)
        with self.log.open("wb") as stream:
            self.process = subprocess.Popen(
                command, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_for("dockerd answering", self.answers, timeout=90)
        except ProofFailed:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-20:]
            raise ProofFailed("dockerd did not start:\n" + "\n".join(tail)) from None

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise ProofFailed(f"dockerd exited with {self.process.returncode} (see {self.log})")
        return self.docker_cmd(["version"], check=False, quiet=True).returncode == 0

    def docker_cmd(self, args: list[str], **options: object) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **options.pop("env", {})}  # type: ignore[dict-item]
        return run([self.docker, *args], env=env, **options)  # type: ignore[arg-type]

    def inspect(self, what: str, template: str) -> str:
        result = self.docker_cmd(["inspect", "--format", template, what], quiet=True)
        return result.stdout.strip()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        print(f"dockerd stopped (exit {self.process.returncode})", flush=True)


# ---------------------------------------------------------------------------
# The base image: what `python:X.Y-slim-bookworm` would be


def host_python(version: str, uv: str) -> tuple[Path, str]:
    """The prefix and full version of this machine's CPython X.Y."""
    found = run([uv, "python", "find", "--no-project", version], check=False, quiet=True)
    if found.returncode != 0:
        raise Unsupported(f"no Python {version} on this machine to put in the base image")
    interpreter = found.stdout.strip()
    probe = run(
        [interpreter, "-c", "import sys; print(sys.base_prefix); print(sys.version)"], quiet=True
    )
    prefix, full = probe.stdout.strip().split("\n", 1)
    if not (Path(prefix) / "bin" / f"python{version}").exists():
        raise Unsupported(f"{interpreter} is not a relocatable CPython prefix ({prefix})")
    return Path(prefix), full


def debootstrap_rootfs(rootfs: Path, cache: Path, log: Path, status: dict[str, str]) -> None:
    """Debian minbase with the interpreter's libraries: debootstrap once, then a tarball."""
    key = sha256_of(BASE_RECIPE, SUITE, MIRROR, *BASE_PACKAGES)[:12]
    tarball = cache / f"minbase-{SUITE}-{key}.tar"
    rootfs.mkdir(parents=True)
    if tarball.exists():
        status["minbase"] = f"cached ({tarball.name})"
        run(["tar", "-C", str(rootfs), "--numeric-owner", "-xpf", str(tarball)], log=log)
        return
    status["minbase"] = "debootstrap"
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            SUITE,
            str(rootfs),
            MIRROR,
        ],
        log=log,
    )
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (rootfs / leftover).glob("*"):
            if path.is_file():
                path.unlink()
    partial = tarball.with_suffix(".partial")
    run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."], log=log)
    partial.rename(tarball)


def add_python(rootfs: Path, prefix: Path, version: str) -> None:
    """The host's CPython into /usr/local, as the official image has it."""
    target = rootfs / "usr" / "local"
    stdlib = Path("lib") / f"python{version}"
    skipped = {stdlib / "test", stdlib / "idlelib", stdlib / "tkinter", stdlib / "turtledemo"}

    def ignore(folder: str, names: list[str]) -> list[str]:
        relative = Path(folder).relative_to(prefix)
        ignored = [name for name in names if name == "__pycache__" or relative / name in skipped]
        if relative == stdlib / "site-packages":  # the host's own packages stay out, pip stays
            ignored += [name for name in names if not name.startswith("pip")]
        return ignored

    shutil.copytree(prefix, target, ignore=ignore, symlinks=True, dirs_exist_ok=True)
    # Scripts (pip, ...) name the host's interpreter in their first line.
    for script in (target / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        content = script.read_bytes()
        if content.startswith(b"#!" + str(prefix).encode()):
            rest = content.partition(b"\n")[2]
            script.write_bytes(f"#!/usr/local/bin/python{version}".encode() + b"\n" + rest)
    python = target / "bin" / "python"
    if not python.exists():
        python.symlink_to(f"python{version}")
    shutil.copy2(CA_BUNDLE, rootfs / CA_BUNDLE.relative_to("/"))
    # libpython is found through /usr/local/lib, not the host's build path.
    run(["chroot", str(rootfs), "/sbin/ldconfig"], quiet=True)


def base_image(
    daemon: Daemon, cache: Path, run_dir: Path, version: str, uv: str, status: dict[str, str]
) -> str:
    prefix, full = host_python(version, uv)
    ca = CA_BUNDLE.read_bytes()
    key = sha256_of(BASE_RECIPE, SUITE, *BASE_PACKAGES, str(prefix), full, ca)[:12]
    short = full.split()[0]
    tag = f"docker-proof/python:{short}-slim-{SUITE}-{key}"
    status["python"] = f"{short} from {prefix}"
    if daemon.docker_cmd(["image", "inspect", tag], check=False, quiet=True).returncode == 0:
        status["base"] = f"in dockerd's cache ({tag})"
        return tag
    tarball = cache / f"base-{key}.tar"
    log = run_dir / "base.log"
    if tarball.exists():
        status["base"] = f"imported from {tarball.name}"
    else:
        status["base"] = "built"
        rootfs = run_dir / "rootfs"
        try:
            debootstrap_rootfs(rootfs, cache, log, status)
            add_python(rootfs, prefix, version)
            checked = subprocess.run(
                [
                    shutil.which("chroot") or "/usr/sbin/chroot",
                    str(rootfs),
                    "/usr/local/bin/python3",
                    "-c",
                    PYTHON_CHECK,
                ],
                env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
                capture_output=True,
                text=True,
                timeout=120,
            )
            if checked.returncode != 0 or checked.stdout.strip() != short:
                raise Unsupported(
                    f"the host's Python {short} does not run in a {SUITE} root filesystem:\n"
                    + (checked.stdout + checked.stderr)[-2000:]
                )
            print(f"ok  Python {short} runs in the {SUITE} root filesystem", flush=True)
            partial = tarball.with_suffix(".partial")
            run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."], log=log)
            partial.rename(tarball)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
    changes = [
        "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        # pip and uv inside builds trust the host's bundle (a TLS-inspecting proxy's CA).
        f"ENV SSL_CERT_FILE={CA_BUNDLE}",
        f"ENV PIP_CERT={CA_BUNDLE}",
        'CMD ["python3"]',
    ]
    options = [option for change in changes for option in ("--change", change)]
    daemon.docker_cmd(["import", *options, str(tarball), tag], log=log)
    return tag


# ---------------------------------------------------------------------------
# The generated project


def snapshot_template(destination: Path) -> Path:
    """This working tree (uncommitted changes included) as one commit of a new repo."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    destination.mkdir(parents=True)
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    commit_all(destination, "working tree", init=True)
    return destination


def commit_all(repo: Path, message: str, init: bool = False) -> None:
    if init:
        run(["git", "init", "-q"], cwd=repo, quiet=True)
    run(["git", "add", "-A"], cwd=repo, quiet=True)
    run(
        ["git", "commit", "-q", "--no-verify", "--allow-empty", "-m", message],
        cwd=repo,
        env=GIT_IDENTITY,
        quiet=True,
    )


def project_environment() -> dict[str, str]:
    """What uv needs here: no interpreter downloads, pyenv's versions all visible."""
    env = {
        "UV_PYTHON_DOWNLOADS": os.environ.get("UV_PYTHON_DOWNLOADS", "never"),
        "DVC_NO_ANALYTICS": "1",
    }
    pyenv = shutil.which("pyenv")
    if pyenv and "PYENV_VERSION" not in os.environ:
        listed = run([pyenv, "versions", "--bare"], quiet=True, check=False).stdout.split()
        wanted = [v for v in listed if v.count(".") == 2 and v.startswith(("3.11", "3.12", "3.13"))]
        if wanted:
            env["PYENV_VERSION"] = ":".join(wanted)
    return env


def generate_project(run_dir: Path, uv: str, env: dict[str, str], log: Path) -> Path:
    template = snapshot_template(run_dir / "template")
    project = run_dir / "proof-project"
    run(
        [
            sys.executable,
            "-m",
            "copier",
            "copy",
            "--trust",
            "--defaults",
            "--vcs-ref",
            "HEAD",
            "--data",
            "level=3",
            str(template),
            str(project),
        ],
        env=env,
        log=log,
    )
    commit_all(project, "Start from mlops-ladder", init=True)
    for task in ("sample-data", "pipeline", "export-candidate"):
        run([uv, "run", "poe", task], cwd=project, env=env, log=log)
    commit_all(project, "Lock and export")  # uv.lock, written by the first `uv run`
    return project


# ---------------------------------------------------------------------------
# The proof


def build_image(daemon: Daemon, project: Path, base: str, log: Path) -> dict[str, str]:
    metadata = json.loads((project / "models/serving/metadata.json").read_text(encoding="utf-8"))
    commit = run(["git", "rev-parse", "HEAD"], cwd=project, quiet=True).stdout.strip()
    version = str(metadata["version"])
    image = f"docker-proof/{metadata['name'].replace('_', '-')}-api:{version}"
    daemon.docker_cmd(
        [
            "build",
            "--progress=plain",
            "--network=host",
            "--build-arg",
            f"BASE={base}",
            "--build-arg",
            f"MODEL_VERSION={version}",
            "--build-arg",
            f"GIT_COMMIT={commit}",
            "--build-arg",
            f"SOURCE_URL=file://{project}",
            "--tag",
            image,
            str(project),
        ],
        log=log,
    )
    return {"image": image, "version": version, "commit": commit, "package": metadata["name"]}


def prove_container(
    daemon: Daemon,
    compose: list[str],
    project: Path,
    built: dict[str, str],
    run_dir: Path,
    uv: str,
    env: dict[str, str],
    timings: Timings,
    figures: dict[str, object],
) -> None:
    """Run the image with the project's compose.yaml and check it from outside and inside."""
    port = free_port()
    token = secrets.token_urlsafe(16)
    override = run_dir / "compose.proof.yaml"
    # The image just built, not a build by compose (the build above passed BASE).
    override.write_text(f"services:\n  api:\n    image: {built['image']}\n", encoding="utf-8")
    compose_env = {
        **daemon.env,
        "API_PORT": str(port),
        "MODEL_API_TOKEN": token,
        "COMPOSE_PROJECT_NAME": f"dockerproof{secrets.token_hex(3)}",
    }
    files = ["-f", str(project / "compose.yaml"), "-f", str(override)]
    log = run_dir / "compose.log"
    run([*compose, *files, "config", "--quiet"], cwd=project, env=compose_env, log=log)
    up = False
    try:
        with timings.step("run: compose up, wait for /ready"):
            run(
                [*compose, *files, "up", "--detach", "--no-build"],
                cwd=project,
                env=compose_env,
                log=log,
            )
            up = True
            container = run(
                [*compose, *files, "ps", "--quiet", "api"], cwd=project, env=compose_env, quiet=True
            ).stdout.strip()
            url = f"http://127.0.0.1:{port}"
            try:
                ready = wait_for(
                    "/ready answering 200", lambda: http_status(f"{url}/ready") == 200, timeout=120
                )
            except ProofFailed:
                logs = daemon.docker_cmd(["logs", container], check=False, quiet=True)
                raise ProofFailed(
                    f"/ready never answered 200; the container's log:\n"
                    f"{(logs.stdout + logs.stderr)[-3000:]}"
                ) from None
            figures["seconds to /ready"] = round(ready, 1)
            ok(f"/ready answers 200 at {url} after {ready:.1f} s")

        with timings.step("run: the project's smoke test against the container"):
            run(
                [
                    uv,
                    "run",
                    "--frozen",
                    built["package"],
                    "smoke",
                    "--url",
                    url,
                    "--expect-version",
                    built["version"],
                ],
                cwd=project,
                env={**env, "MODEL_API_TOKEN": token},
                log=log,
            )
            ok("smoke --url passed (token required and checked, version matched)")

        with timings.step("run: checks inside the container"):
            check_inside(daemon, container, built)

        with timings.step("run: HEALTHCHECK turns healthy"):
            health = wait_for(
                "the HEALTHCHECK turning healthy",
                lambda: daemon.inspect(container, "{{.State.Health.Status}}") == "healthy",
                timeout=120,
                interval=1.0,
            )
            figures["seconds to healthy"] = round(health, 1)
            ok(f"HEALTHCHECK healthy ({health:.1f} s after /ready)")

        with timings.step("run: docker stop ends the server cleanly"):
            start = time.monotonic()
            daemon.docker_cmd(["stop", "--time", "30", container], quiet=True)
            figures["seconds to stop"] = round(time.monotonic() - start, 1)
            code = daemon.inspect(container, "{{.State.ExitCode}}")
            check(code == "0", f"the server exited 0 on SIGTERM (exit {code}): it is PID 1")
    finally:
        if up:
            run(
                [*compose, *files, "down", "--volumes", "--remove-orphans"],
                cwd=project,
                env=compose_env,
                log=log,
                check=False,
            )


def check_inside(daemon: Daemon, container: str, built: dict[str, str]) -> None:
    user = daemon.inspect(container, "{{.Config.User}}")
    check(
        user.split(":")[0].isdigit() and user.split(":")[0] != "0",
        f"the image's USER is numeric and not root ({user})",
    )
    uid = daemon.docker_cmd(
        ["exec", container, "python", "-c", "import os; print(os.getuid())"], quiet=True
    ).stdout.strip()
    check(uid not in ("", "0"), f"the server process runs as uid {uid}")
    environment = json.loads(daemon.inspect(container, "{{json .Config.Env}}"))
    check("ORT_DISABLE_TELEMETRY=1" in environment, "onnxruntime's telemetry is off")
    read_only = daemon.inspect(container, "{{.HostConfig.ReadonlyRootfs}}")
    check(read_only == "true", "compose runs it with a read-only root filesystem")
    writes = (
        "import pathlib\n"
        "pathlib.Path('/tmp/probe').write_text('x')\n"
        "try:\n    pathlib.Path('/app/probe').write_text('x')\n"
        "except OSError:\n    print('refused')\n"
    )
    result = daemon.docker_cmd(["exec", container, "python", "-c", writes], quiet=True)
    check(result.stdout.strip() == "refused", "/app is not writable, /tmp is")
    probe = (
        "import importlib.util, json\n"
        f"names = {[*DEV_TOOLS, *SERVING, built['package']]!r}\n"
        "print(json.dumps({n: importlib.util.find_spec(n) is not None for n in names}))\n"
    )
    found = json.loads(
        daemon.docker_cmd(["exec", container, "python", "-c", probe], quiet=True).stdout
    )
    present = [name for name in DEV_TOOLS if found[name]]
    check(not present, f"no dev, test or release tool in the image ({', '.join(DEV_TOOLS)})")
    check(
        all(found[name] for name in (*SERVING, built["package"])),
        f"the package and the serving group are installed ({', '.join(SERVING)})",
    )
    labels = json.loads(daemon.inspect(built["image"], "{{json .Config.Labels}}"))
    check(
        labels.get("org.opencontainers.image.version") == built["version"],
        f"label org.opencontainers.image.version = {built['version']}",
    )
    check(
        labels.get("org.opencontainers.image.revision") == built["commit"],
        f"label org.opencontainers.image.revision = {built['commit'][:12]}",
    )


def unmount_below(path: Path) -> None:
    """Mounts a killed dockerd may leave under its exec root."""
    with open("/proc/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted((p for p in points if p.startswith(str(path))), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def prove(args: argparse.Namespace) -> int:
    timings = Timings()
    cache: Path = args.cache_dir.resolve()
    if args.fresh and cache.exists():
        shutil.rmtree(cache)
    logs = cache / "logs"  # the last run's logs, kept after its work folder is gone
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    run_dir = Path(tempfile.mkdtemp(prefix="docker-proof-"))  # short: unix socket paths
    status: dict[str, str] = {}
    figures: dict[str, object] = {}
    daemon: Daemon | None = None
    built: dict[str, str] | None = None
    passed = False
    env = project_environment()
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    uv = shutil.which("uv", path=search)
    if uv is None:
        raise Unsupported("uv is not installed (run this through `uv run`)")
    try:
        with timings.step("tools: docker.io, docker-compose, debootstrap"):
            tools = ensure_tools(run_dir / "apt.log")
            status["installed"] = ", ".join(tools["installed"]) or "nothing"  # type: ignore[arg-type]
        with timings.step("dockerd: start a private daemon"):
            daemon = Daemon(str(tools["dockerd"]), str(tools["docker"]), cache, run_dir)
            daemon.start()
        with timings.step("project: generate level 3, pipeline, export-candidate"):
            project = generate_project(run_dir, uv, env, run_dir / "project.log")
            version = (project / ".python-version").read_text(encoding="utf-8").strip()
        with timings.step(f"base: {SUITE} minbase + Python {version} + CA bundle"):
            if args.base:
                base = args.base
                status["base"] = f"{base} (--base)"
            else:
                base = base_image(daemon, cache, run_dir, version, uv, status)
        with timings.step("build: docker build the generated Dockerfile"):
            built = build_image(daemon, project, base, run_dir / "build.log")
            size = int(daemon.inspect(built["image"], "{{.Size}}"))
            figures["image MB"] = round(size / 1e6)
            ok(f"built {built['image']} ({size / 1e6:.0f} MB)")
        compose: list[str] = tools["compose"]  # type: ignore[assignment]
        prove_container(daemon, compose, project, built, run_dir, uv, env, timings, figures)
        passed = True
    finally:
        with timings.step("clean up"):
            if daemon is not None:
                if built is not None:
                    daemon.docker_cmd(["image", "rm", built["image"]], check=False, quiet=True)
                # BuildKit keeps the dependency layer for the next run; a week unused, it goes.
                daemon.docker_cmd(
                    ["builder", "prune", "--force", "--filter", "until=168h"],
                    check=False,
                    quiet=True,
                )
                daemon.stop()
            unmount_below(run_dir)
            for log in run_dir.glob("*.log"):
                shutil.copy2(log, logs / log.name)
            if args.keep:
                print(f"kept {run_dir}", flush=True)
            else:
                shutil.rmtree(run_dir, ignore_errors=True)
        summary = {**status, **figures, "logs": str(logs)}
        print("\n" + "\n".join(f"- {name}: {value}" for name, value in summary.items()))
        print("\n" + timings.table(), flush=True)
        report = {"passed": passed, **summary, "steps": dict(timings.steps)}
        (logs / "summary.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("\ndocker proof: the image builds, serves, and passes every check", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"kept between runs (default {DEFAULT_CACHE})",
    )
    parser.add_argument("--fresh", action="store_true", help="empty the cache first")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (project, logs)")
    parser.add_argument("--base", help="an image to use as BASE instead of making one")
    args = parser.parse_args(argv)
    try:
        require_machine()
        return prove(args)
    except Unsupported as error:
        print(f"docker proof: cannot run here: {error}", file=sys.stderr)
        return 2
    except ProofFailed as error:
        print(f"docker proof FAILED: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
