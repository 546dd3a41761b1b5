"""The unit tier keeps the plugin's config cache in a folder of the test's own, so an
in-process `loader.load` never writes to the host's /run/vlanpipe; and the plainest node
config, for the tests that call the plugin as a process."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plugin.config import cache


@pytest.fixture(autouse=True)
def private_runtime_dir(tmp_path_factory: pytest.TempPathFactory,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path_factory.mktemp("run")
    folder.chmod(0o700)
    monkeypatch.setattr(cache, "RUNTIME_DIR", str(folder / "vlanpipe"))


@pytest.fixture
def node(tmp_path: Path) -> Path:
    """A node config (root's) keeping state and log in the test's folder."""
    path = tmp_path / "etc" / "config.yaml"
    path.parent.mkdir(mode=0o755)
    path.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"),
                                    "log": {"file": str(tmp_path / "log" / "vlanpipe.log")}}))
    return path
