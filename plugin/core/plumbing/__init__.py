"""Plumbing: the only code that makes or removes a pod's port, one plumber per way in.

A plumber has twin verbs, `plug` and `unplug` (as os-vif's plugins do). The
pipework plumber reaches a Docker container through pipework (the exec
front-end, and CNI with Docker as the runtime); the netns plumber reaches a
namespace a CRI runtime (containerd, CRI-O) names by path. Every plumber ends
with the same port on the same bridge, with the same tag and the same
ownership marks, so the core, teardown, list and gc treat them alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugin.core.plumbing.base import Plumber, Sandbox, Undo, docker_sandbox, still_there

if TYPE_CHECKING:
    from plugin.config.schema import Config

__all__ = ["Plumber", "Sandbox", "Undo", "docker_sandbox", "plumbers", "still_there"]


def plumbers(config: "Config") -> dict[str, Plumber]:
    """Every plumber, by the name a record keeps."""
    from plugin.core.plumbing.netns import NetnsPlumber
    from plugin.core.plumbing.pipework import PipeworkPlumber

    return {plumber.name: plumber for plumber in (PipeworkPlumber(config), NetnsPlumber(config))}
