"""The web SDK (web/sdk): generated types in step with the schema, the type check, and the
protocol client against a real hearthd.

    HEARTHD_BIN=... python3 -m pytest -q -p no:cacheprovider Tests/web/test_sdk.py
"""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))
from hearth import DEV_SECRET, Server  # noqa: E402

IN_CI = os.environ.get("CI") == "true"


def tool(name):
    """The path of a tool the test needs: skipped when absent on a developer machine, failed in CI."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is missing (CI must install it: scripts/setup-deps)")
        pytest.skip(f"{name} is not installed")
    return path


def test_protocol_dts_is_generated_from_the_schema():
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "protocol.d.ts"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-protocol-dts"),
                        str(ROOT / "docs" / "protocol.schema.json"), str(out)], check=True, timeout=30)
        committed = (ROOT / "web" / "sdk" / "protocol.d.ts").read_text()
        assert out.read_text() == committed, "web/sdk/protocol.d.ts is stale: run scripts/gen-protocol-dts"


def test_protocol_dts_has_a_type_per_def():
    import json
    defs = json.loads((ROOT / "docs" / "protocol.schema.json").read_text())["$defs"]
    dts = (ROOT / "web" / "sdk" / "protocol.d.ts").read_text()
    for name in defs:
        type_name = "".join(p[:1].upper() + p[1:] for p in name.replace(".", "-").split("-"))
        assert f"export interface {type_name} " in dts or f"export type {type_name} =" in dts, name


def test_typescript_check_passes():
    tsc = tool("tsc")
    result = subprocess.run([tsc, "-p", str(ROOT / "web")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_typescript_check_catches_a_misspelt_field():
    """The check is real: a client message with a wrong field name does not type-check."""
    tsc = tool("tsc")
    with tempfile.TemporaryDirectory(dir=ROOT / "web") as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "bad.js").write_text(
            "// @ts-check\n"
            "import { HearthClient } from '../sdk/index.js';\n"
            "const client = new HearthClient({ room: 'r' });\n"
            "client.request('admit', { membr: 'p1' });\n")
        (tmp / "tsconfig.json").write_text(
            '{"extends": "../tsconfig.json", "include": ["bad.js"]}\n')
        result = subprocess.run([tsc, "-p", str(tmp)], capture_output=True, text=True, timeout=300)
        assert result.returncode != 0
        assert "membr" in result.stdout, result.stdout


@pytest.fixture(scope="module")
def server():
    if not os.environ.get("HEARTHD_BIN"):
        if IN_CI:
            pytest.fail("HEARTHD_BIN is not set")
        pytest.skip("HEARTHD_BIN is not set")
    s = Server()
    yield s
    code = s.stop()
    assert code == 0, f"hearthd exited with {code}:\n{s.log()}"


def test_node_client_against_hearthd(server):
    node = tool("node")
    env = dict(os.environ, HEARTH_URL=server.url, HEARTH_SECRET=DEV_SECRET, HEARTH_GRACE_MS="4000")
    result = subprocess.run([node, "--test-reporter=spec", str(ROOT / "Tests" / "web" / "client-test.mjs")],
                            capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "# fail 0" in output or "ℹ fail 0" in output, output
    assert "skipped 0" in output or "# skip 0" in output, output
