"""For every tier: the config cache entries a test's plugin calls leave in
/run/vlanpipe (one per config file, all under this session's temporary folder)
are removed when the test ends, so the suite leaves nothing outside its folders."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.pluginstate import forget_config_cache


@pytest.fixture(autouse=True)
def config_cache_entries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    forget_config_cache(str(tmp_path_factory.getbasetemp()))
