"""For every tier: the config cache entries a test's plugin calls leave in
/run/vlanpipe (one per config file, all under this session's temporary folder)
are removed when the test ends, so the suite leaves nothing outside its folders."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from plugin.config import cache


@pytest.fixture(autouse=True)
def config_cache_entries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    mine = os.path.basename(cache.entry_path(str(tmp_path_factory.getbasetemp())))[:-len(".json")]
    try:
        names = os.listdir(cache.RUNTIME_DIR)
    except OSError:
        return
    for name in names:
        if name.startswith(mine):
            os.unlink(os.path.join(cache.RUNTIME_DIR, name))
