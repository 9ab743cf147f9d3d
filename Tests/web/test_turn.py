"""Behind NAT: two pages forced to relay-only ICE through a local coturn get video flowing with
the TURN credentials hearthd handed out (Tests/web/turn_driver.py does the work)."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from test_mesh import IN_CI, missing

HERE = pathlib.Path(__file__).resolve().parent


def test_relay_only_video_through_coturn_with_hearthds_credentials():
    why = missing() or (None if shutil.which("turnserver") else "coturn (turnserver) is not installed")
    if why:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    command = [sys.executable, str(HERE / "turn_driver.py")]
    if shutil.which("unshare") and shutil.which("ip") and subprocess.run(
            ["unshare", "-n", "true"], capture_output=True).returncode == 0:
        command = ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=os.environ)
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output
    assert "turn driver: all checks passed" in output
