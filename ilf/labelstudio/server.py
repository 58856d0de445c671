"""A local Label Studio server on loopback, installed into a virtual environment of its own.

The server's dependencies conflict with the ML stack (it pins older pyarrow, Django and ~100
more), so it never shares our environment: ``install_server`` creates ``<home>/venv`` once and
reuses it. ``start`` runs it with a preset admin account and API token, detached from the calling
process, and records its pid, port and URL in the data directory; ``stop`` ends it by that pid.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from ilf.errors import IlfError
from ilf.files import atomic_write_json, atomic_write_text, pid_alive

log = logging.getLogger(__name__)

SERVER_REQUIREMENT = "label-studio>=1.20"


class ServerError(IlfError):
    """The local server could not be installed, started or reached."""


DEFAULT_USERNAME = "admin@ilf.local"


def default_home() -> Path:
    """Where the server's venv and default data live: $ILF_LABEL_STUDIO_HOME or ~/.cache/ilf/labelstudio."""
    return Path(os.environ.get("ILF_LABEL_STUDIO_HOME") or Path.home() / ".cache" / "ilf" / "labelstudio")


def server_executable(home: Path | None = None) -> Path:
    return (home or default_home()) / "venv" / "bin" / "label-studio"


def install_server(home: Path | None = None, requirement: str = SERVER_REQUIREMENT) -> Path:
    """Create the server's own venv and install Label Studio into it (once); return the executable."""
    home = home or default_home()
    venv = home / "venv"
    done = venv / ".ilf-installed"
    executable = server_executable(home)
    if done.exists() and executable.exists():
        return executable
    # The marker is written last: an interrupted install is redone from scratch instead of
    # leaving a half-populated environment that looks installed.
    if venv.exists():
        shutil.rmtree(venv)
    log.info("installing %s into %s (once; about a minute)", requirement, venv)
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement]
    env = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}  # our CPU pins are not the server's
    result = subprocess.run(pip, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise ServerError(f"installing {requirement} failed:\n{result.stderr[-2000:]}")
    done.write_text(requirement + "\n")
    return executable


@dataclass
class Credentials:
    username: str
    password: str
    token: str

    @classmethod
    def load_or_create(cls, data_dir: Path, username: str | None = None) -> Credentials:
        """Read the data directory's credentials, or make new ones (token from LABEL_STUDIO_API_KEY if set)."""
        path = data_dir / "credentials.json"
        if path.exists():
            stored = json.loads(path.read_text())
            return cls(**stored)
        creds = cls(
            username=username or DEFAULT_USERNAME,
            password=secrets.token_urlsafe(18),
            token=os.environ.get("LABEL_STUDIO_API_KEY") or secrets.token_hex(20),
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, asdict(creds))
        path.chmod(0o600)  # the token is as good as the password
        return creds

    def masked_token(self) -> str:
        return mask(self.token)


def mask(secret: str) -> str:
    return f"{secret[:4]}…({len(secret)} chars)" if secret else "(none)"


@dataclass
class ServerInfo:
    url: str
    port: int
    pid: int
    data_dir: str

    @classmethod
    def read(cls, data_dir: Path) -> ServerInfo | None:
        path = data_dir / "server.json"
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _server_env(data_dir: Path, creds: Credentials) -> dict[str, str]:
    env = dict(os.environ)
    # Label Studio reads LABEL_STUDIO_X, then HEARTEX_X, then a bare X: drop the bare names a
    # shell often has for other reasons, or they silently change the server's host, port or user.
    for name in ("HOST", "PORT", "USERNAME", "PASSWORD", "DEBUG", "LABEL_STUDIO_HOST", "LABEL_STUDIO_PORT"):
        env.pop(name, None)
    for name in list(env):
        if name.startswith("HEARTEX_"):
            env.pop(name)
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        XDG_CONFIG_HOME=str(data_dir / "config"),
        LABEL_STUDIO_USERNAME=creds.username,
        LABEL_STUDIO_PASSWORD=creds.password,
        LABEL_STUDIO_USER_TOKEN=creds.token,
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        COLLECT_ANALYTICS="false",
        LATEST_VERSION_CHECK="false",
        # The server listens on loopback only, and its webhooks go to `ilf loop`'s receiver on
        # loopback, which Label Studio's SSRF guard would refuse.
        SSRF_PROTECTION_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_server(
    data_dir: str | Path,
    port: int = 8080,
    username: str | None = None,
    home: Path | None = None,
    timeout: float = 180.0,
) -> tuple[ServerInfo, Credentials]:
    """Start Label Studio on 127.0.0.1:port, detached; return once ``/health`` answers."""
    data_dir = Path(data_dir).resolve()
    existing = ServerInfo.read(data_dir)
    if existing and pid_alive(existing.pid) and healthy(existing.url):
        log.info("Label Studio already running at %s (pid %d)", existing.url, existing.pid)
        return existing, Credentials.load_or_create(data_dir, username)
    if not port_is_free(port):
        # Label Studio would quietly move to port+1; refuse instead so the URL we report is true.
        raise ServerError(f"port {port} on 127.0.0.1 is in use; choose another with --port")
    executable = install_server(home)
    creds = Credentials.load_or_create(data_dir, username)
    url = f"http://127.0.0.1:{port}"
    log_path = data_dir / "server.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [str(executable), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
            env=_server_env(data_dir, creds),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives `ilf labelstudio serve`; stop() signals the whole group
        )
    info = ServerInfo(url=url, port=port, pid=process.pid, data_dir=str(data_dir))
    atomic_write_json(data_dir / "server.json", asdict(info))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-1500:]
            raise ServerError(f"Label Studio exited with code {process.returncode}; end of {log_path}:\n{tail}")
        if healthy(url):
            return info, creds
        time.sleep(0.5)
    stop_server(data_dir)
    raise ServerError(f"Label Studio did not answer {url}/health within {timeout:.0f} s; see {log_path}")


def stop_server(data_dir: str | Path, timeout: float = 20.0) -> bool:
    """Stop the server recorded in ``data_dir``; False if none was running."""
    data_dir = Path(data_dir).resolve()
    info = ServerInfo.read(data_dir)
    if info is None or not pid_alive(info.pid):
        (data_dir / "server.json").unlink(missing_ok=True)
        return False
    os.killpg(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(info.pid):
        # Reap it when it is our own child; one started by another process is not ours to reap.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(info.pid, os.WNOHANG)
        time.sleep(0.2)
    if pid_alive(info.pid):
        os.killpg(info.pid, signal.SIGKILL)
    (data_dir / "server.json").unlink(missing_ok=True)
    return True


def write_env_file(data_dir: Path, info: ServerInfo, creds: Credentials) -> Path:
    """A shell snippet (mode 600) that exports LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY."""
    path = data_dir / "env.sh"
    atomic_write_text(path, f"export LABEL_STUDIO_URL={info.url}\nexport LABEL_STUDIO_API_KEY={creds.token}\n")
    path.chmod(0o600)
    return path
