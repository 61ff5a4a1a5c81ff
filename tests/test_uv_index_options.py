"""scripts/uv_index_options.py: uv is given the indexes pip is configured with, and nothing when pip has none."""
import importlib.util
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "uv_index_options.py"


def load_script():
    spec = importlib.util.spec_from_file_location("uv_index_options", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_pip_configuration_gives_no_options():
    assert load_script().uv_options("") == []


def test_mirrors_and_wheel_folders_are_passed_on_once_each_with_pips_best_match():
    listed = ("global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'\n"
              "global.find-links='/opt/wheels'\n"
              ":env:.find-links='/opt/wheels'\n"
              "global.cert='/etc/ssl/certs/ca-certificates.crt'\n"
              ":env:.default-timeout='180'\n")
    assert load_script().uv_options(listed) == [
        "--extra-index-url", "file:///opt/pypi/simple", "--extra-index-url", "file:///opt/pypi-more/simple",
        "--find-links", "/opt/wheels", "--index-strategy", "unsafe-best-match"]


def test_a_replaced_index_is_passed_on_alone():
    options = load_script().uv_options("user.index-url='https://mirror.example/simple'\n")
    assert options == ["--index-url", "https://mirror.example/simple"]


def test_the_script_reads_this_machines_pip(tmp_path):
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nextra-index-url = file:///srv/wheels/simple\n")
    env = {"PIP_CONFIG_FILE": str(config), "PATH": "/usr/bin:/bin"}
    printed = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, check=True)
    assert "--extra-index-url file:///srv/wheels/simple" in printed.stdout
