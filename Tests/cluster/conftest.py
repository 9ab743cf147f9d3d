import asyncio
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import cluster  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    """Without HAProxy (or, for the shared store's tests, PostgreSQL) the tests are skipped,
    except under CI=true, where .ci/run installed both and a skip would hide a failure. The
    routing tests need no PostgreSQL."""
    if IN_CI:
        return
    for item in items:
        why = cluster.missing(postgres=not item.fspath.basename.startswith("test_routing"))
        if why:
            item.add_marker(pytest.mark.skip(reason=why))


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))
