"""The SFU control plane end to end: a real hearthd brokering a real Janus (Debian's package),
with clients speaking the v1 protocol over TLS and SDP offers written here (no browser: the
browser tests in Tests/browser carry real media). The run re-executes itself in a network
namespace with loopback and a veth pair (Tests/e2e/janus.py), where Janus gathers its ICE
candidates; nothing leaves it. Without janus the tests are skipped, except under CI=true.
"""
import asyncio
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import janus  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config):
    janus.reexec_in_netns()


def pytest_collection_modifyitems(config, items):
    why = janus.missing()
    if why and not IN_CI:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=why))


def run(coro, timeout=60):
    """Runs one test's coroutine, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
