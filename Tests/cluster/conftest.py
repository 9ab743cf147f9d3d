import asyncio
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import cluster  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    why = cluster.missing()
    if why and not IN_CI:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=why))


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))
