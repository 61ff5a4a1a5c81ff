"""scripts/check_disk_space.py: a set-up that cannot fit stops with a message, not half way through pip."""
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_disk_space.py"
GIB = 1024 ** 3


def load_script():
    spec = importlib.util.spec_from_file_location("check_disk_space", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_free(monkeypatch, module, free_bytes):
    monkeypatch.setattr(module.shutil, "disk_usage", lambda path: SimpleNamespace(free=free_bytes))


def test_too_little_space_names_what_is_free_and_what_is_needed(monkeypatch, capsys):
    module = load_script()
    fake_free(monkeypatch, module, int(3.2 * GIB))
    assert module.main(["/somewhere", "--need-gib", "7"]) == 1
    message = capsys.readouterr().err
    assert "3.2 GiB free" in message and "7 GiB needed" in message and "TORCH_PINS" in message


def test_enough_space_passes_silently(monkeypatch, capsys):
    module = load_script()
    fake_free(monkeypatch, module, 8 * GIB)
    assert module.main(["/somewhere", "--need-gib", "7"]) == 0
    assert capsys.readouterr().err == ""


def test_the_real_disk_is_read_from_the_command_line(tmp_path):
    # An impossible need fails and a zero need passes, on whatever disk the tests run.
    run = lambda need: subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--need-gib", need],
                                      capture_output=True, text=True)
    refused, accepted = run("1e9"), run("0")
    assert refused.returncode == 1 and "not enough disk space" in refused.stderr
    assert accepted.returncode == 0
