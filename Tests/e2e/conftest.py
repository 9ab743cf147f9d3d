import asyncio
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from hearth import Server  # noqa: E402


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    code = s.stop()
    assert code == 0, f"hearthd exited with {code}:\n{s.log()}"


def run(coro, timeout=60):
    """Runs one test's coroutine, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
