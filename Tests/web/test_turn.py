"""Behind NAT: two pages forced to relay-only ICE through a local coturn get video flowing with
the TURN credentials hearthd handed out (Tests/web/turn_driver.py does the work)."""
import shutil

from test_mesh import run_driver


def test_relay_only_video_through_coturn_with_hearthds_credentials():
    run_driver("turn", None if shutil.which("turnserver") else "coturn (turnserver) is not installed")
