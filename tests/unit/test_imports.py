"""Every module of the product imports under the interpreter running the tests.

The unit tier runs under the oldest and the newest Python that setup.cfg declares
(scripts/test), and most of it imports only what its tests touch: a construct that a
module evaluates at import and an older Python lacks (a `|` of classes outside an
annotation, for one) would surface only in the command that imports that module, on the
node. Importing each module here makes the declared range true of all of them.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import pipework_wrapper
import plugin


def _modules() -> list[str]:
    found = []
    for package in (plugin, pipework_wrapper):
        found.append(package.__name__)
        found += [info.name for info in pkgutil.walk_packages(package.__path__,
                                                                f"{package.__name__}.")
                  if not info.name.endswith(".__main__")]  # runs the program when imported
    return sorted(found)


def test_the_walk_finds_the_product() -> None:
    modules = _modules()
    assert "plugin.ipam.mac" in modules and "plugin.core.plumbing.pipework" in modules
    assert "pipework_wrapper.ovs" in modules and len(modules) > 40, modules


@pytest.mark.parametrize("name", _modules())
def test_module_imports(name: str) -> None:
    importlib.import_module(name)
