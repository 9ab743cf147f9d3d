"""The SDK's WebRTC mesh in real headless Chromium (Debian's, through Playwright) against a real
hearthd: a full mesh of three pages with video on every pair, the video cap, three drops and
resumes, receiver-side mute, and breakouts (pair mesh, a staff visit, back to one mesh).
Tests/web/mesh_driver.py does the work, inside a loopback-only network namespace (`unshare -n`)
when one can be made here, else on the host's loopback."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/lib/chromium/chromium")
IN_CI = os.environ.get("CI") == "true"


def missing():
    if not os.environ.get("HEARTHD_BIN"):
        return "HEARTHD_BIN is not set"
    if not os.path.exists(CHROMIUM):
        return f"no chromium at {CHROMIUM}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (python) is not installed"
    return None


def run_driver(name, why=None):
    """Runs Tests/web/<name>_driver.py in a loopback-only network namespace when one can be made
    here (else on the host's loopback) and asserts it passed. Skips (fails under CI=true) when
    something it needs is missing: `why`, or what `missing()` finds."""
    why = missing() or why
    if why:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    command = [sys.executable, str(HERE / f"{name}_driver.py")]
    if shutil.which("unshare") and shutil.which("ip") and subprocess.run(
            ["unshare", "-n", "true"], capture_output=True).returncode == 0:
        command = ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output
    assert f"{name} driver: all checks passed" in output


def test_mesh_in_chromium():
    run_driver("mesh")
