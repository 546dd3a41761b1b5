"""The README's uninstall section removes everything the plugin puts on a node: each place
is taken from the code that writes it, so a new one without an uninstall step fails here."""

from __future__ import annotations

import inspect
import os
import re

from plugin.config import cache
from plugin.config.schema import parse
from plugin.ops import install

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def section() -> str:
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    found = re.search(r"^## Uninstalling\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert found, "README has no '## Uninstalling' section"
    return found.group(1)


def runtime_dir() -> str:
    """The config cache's folder as the code sets it (the unit tier points it elsewhere)."""
    found = re.search(r'^RUNTIME_DIR = "(.+)"$', inspect.getsource(cache), flags=re.M)
    assert found
    return found.group(1)


def test_the_uninstall_section_names_every_place_the_plugin_writes():
    text = section()
    defaults = parse({}, "(defaults)")
    places = {
        "exec launcher": f"{install.DEFAULT_DIR}/{install.DEFAULT_NAME}",
        "CNI binary link": "/opt/cni/bin/vlanpipe",
        "CNI conflists": "/etc/cni/net.d/",
        "state directory": defaults.state_dir,
        "config cache": runtime_dir(),
        "log": os.path.dirname(defaults.log_file),
        "node config": "/etc/vlanpipe",
        "leases in etcd": "gc --node",
        "uplink port": "uplink:",
        "bridge": f"ovs-vsctl del-br {defaults.bridge}",
    }
    missing = [f"{what} ({needle})" for what, needle in places.items() if needle not in text]
    assert not missing, f"the uninstall section does not cover: {missing}"


def test_its_commands_are_commands():
    """Short and command-based: every step is in a shell block, none asks for a shell
    variable the reader has not set."""
    blocks = re.findall(r"^```sh\n(.*?)^```", section(), flags=re.S | re.M)
    assert blocks and "$" not in "".join(blocks).replace("$(", "")
