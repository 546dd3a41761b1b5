"""The unit tier keeps the plugin's config cache in a folder of the test's own, so an
in-process `loader.load` never writes to the host's /run/vlanpipe."""

from __future__ import annotations

import pytest

from plugin.config import cache


@pytest.fixture(autouse=True)
def private_runtime_dir(tmp_path_factory: pytest.TempPathFactory,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path_factory.mktemp("run")
    folder.chmod(0o700)
    monkeypatch.setattr(cache, "RUNTIME_DIR", str(folder / "vlanpipe"))
