"""Helpers for the browser test: an isolated JupyterLab server and Chromium launch settings.

The server runs with throw-away config, data, runtime, settings and workspace
directories so it never reads or writes the user's Jupyter setup, and with the
settings that keep pop-ups (news, update checks) from covering the notebook.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts" / "browser"
CHROMIUM_PATH = Path("/usr/bin/chromium")

# This machine has no internet: without the background-networking flags Chromium
# keeps retrying refused connections (updates, sync, QUIC probes).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# User settings written into the temporary settings dir, keyed by plugin id.
LAB_USER_SETTINGS = {
    # No news toast, no "new version available" prompt, no toasts at all.
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    # Running cells must not write outputs back into the repository's notebook.
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # Keep every cell's output in the DOM so selectors find widgets off-screen too.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

# Front-end plugins switched off through page_config.json.
LAB_DISABLED_PLUGINS = ["@jupyterlab/apputils-extension:announcements"]


def require_browser_tools() -> None:
    """Skip when the browser tooling is absent, except in CI where it must exist."""
    import pytest

    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the Python 'playwright' package (pip install -e '.[dev]')")
    if not CHROMIUM_PATH.exists():
        missing.append(f"{CHROMIUM_PATH} (run scripts/ensure_chromium.sh)")
    if not missing:
        return
    message = "browser test needs " + " and ".join(missing)
    if os.environ.get("CI"):
        pytest.fail(message + "; CI is set, so this is an error, not a skip")
    pytest.skip(message)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_lab_config(config_dir: Path, settings_dir: Path) -> None:
    """Write the JupyterLab page config and user settings that silence pop-ups."""
    labconfig = config_dir / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    page_config = {"disabledExtensions": {name: True for name in LAB_DISABLED_PLUGINS}}
    (labconfig / "page_config.json").write_text(json.dumps(page_config))
    for plugin_path, values in LAB_USER_SETTINGS.items():
        target = settings_dir / f"{plugin_path}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))


@dataclass
class LabServer:
    """A running JupyterLab server started by :func:`start_lab_server`."""

    process: subprocess.Popen
    port: int
    token: str
    root_dir: Path
    log_path: Path

    @property
    def base_url(self) -> str:
        """HTTP root of the server."""
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, relative_path: str) -> str:
        """URL that opens ``relative_path`` (relative to root_dir) in JupyterLab."""
        return f"{self.base_url}/lab/tree/{relative_path}?token={self.token}&reset"

    def log_tail(self, n_chars: int = 4000) -> str:
        """Last part of the server log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return "<no server log>"

    def stop(self) -> None:
        """Stop the server and its kernels (they share its process group)."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass


def start_lab_server(root_dir: Path, scratch_dir: Path, log_path: Path,
                     startup_timeout: float = 90.0) -> LabServer:
    """Start JupyterLab on 127.0.0.1 serving ``root_dir``; return once its API answers.

    ``scratch_dir`` receives the temporary Jupyter config/data/runtime/settings
    directories. The server inherits the current environment, so FACE_AGING_HOME
    and FACE_AGING_DATASET reach the notebook kernels unchanged.
    """
    dirs = {name: scratch_dir / name for name in
            ("config", "data", "runtime", "settings", "workspaces", "checkpoints", "ipython")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    write_lab_config(dirs["config"], dirs["settings"])

    env = dict(os.environ)
    env.update({
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        # Kernel specs from this venv win over any user or system ones.
        "JUPYTER_PREFER_ENV_PATH": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    })
    port = free_port()
    token = secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        # Exposes window.jupyterapp so the test can run app commands directly.
        "--LabApp.expose_app_in_browser=True",
        # An absolute checkpoint dir keeps .ipynb_checkpoints out of the repository.
        f"--FileCheckpoints.checkpoint_dir={dirs['checkpoints']}",
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("w")
    process = subprocess.Popen(
        command, cwd=root_dir, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: teardown also ends the kernels
    )
    log_file.close()  # the child keeps its own handle
    server = LabServer(process, port, token, root_dir, log_path)

    deadline = time.monotonic() + startup_timeout
    status_url = f"{server.base_url}/api/status?token={token}"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with code {process.returncode} during startup:\n"
                f"{server.log_tail()}")
        try:
            with urllib.request.urlopen(status_url, timeout=2) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(
        f"JupyterLab did not answer on port {port} within {startup_timeout:.0f} s:\n"
        f"{server.log_tail()}")
