"""doctor's view of the front-ends this node has installed: the kubelet's exec plugin
(DIR/NAME/NAME, `vlanpipe install`), the CNI plugin (/opt/cni/bin/vlanpipe), or both.

A CNI-only node has no exec launcher and must not fail for it; a node with
neither cannot run a pod. Only what is installed is judged.
"""

from __future__ import annotations

import glob
import os
from typing import Callable

from plugin.errors import Failure
from plugin.ops.install import DEFAULT_DIR

EXEC_DIR = DEFAULT_DIR
CNI_BIN_DIR = "/opt/cni/bin"
CNI_NAME = "vlanpipe"
LAUNCHER_MARK = b"plugin.frontends.exec_cli"  # in the launcher `install` writes
EXEC_FIX = "run: vlanpipe install --dir DIR --name NAME"

Probe = tuple[str, Callable[[], str], str]


def checks(executable: str) -> list[Probe]:
    found: list[Probe] = [(f"kubelet install {os.path.basename(path)}",
                           (lambda path=path: _launcher(path)), EXEC_FIX)
                          for path in _launchers(executable)]
    cni = os.path.join(CNI_BIN_DIR, CNI_NAME)
    if os.path.lexists(cni):
        found.append(("cni install", lambda: _cni(cni),
                      f'run: ln -sf "$(command -v vlanpipe-cni)" {cni}'))
    return found or [("front-ends", _none, f"for kubelet 1.0-1.5 {EXEC_FIX}; for a CNI "
                      f'runtime run: ln -sf "$(command -v vlanpipe-cni)" {cni}')]


def _laid_out(path: str) -> bool:
    return os.path.basename(os.path.dirname(path)) == os.path.basename(path)


def _launchers(executable: str) -> list[str]:
    """The launcher doctor runs as, or else the ones `install` wrote under EXEC_DIR."""
    path = os.path.abspath(executable)
    if _laid_out(path) and os.path.isfile(path):
        return [path]
    found = []
    for candidate in sorted(glob.glob(os.path.join(glob.escape(EXEC_DIR), "*", "*"))):
        try:
            with open(candidate, "rb") as handle:
                head = handle.read(512)
        except OSError:
            continue
        if _laid_out(candidate) and LAUNCHER_MARK in head:
            found.append(candidate)
    return found


def _launcher(path: str) -> str:
    parent = os.path.basename(os.path.dirname(path))
    if not os.access(path, os.X_OK):
        raise Failure(f"{path} is not executable")
    with open(path, "rb") as handle:
        first = handle.readline().decode(errors="replace")
    interpreter = first[2:].split()[0] if first.startswith("#!") and first[2:].split() else ""
    if interpreter and not os.access(interpreter, os.X_OK):
        raise Failure(f"{path} runs {interpreter}, which is gone (Python reinstalled?)")
    return f"{path} (--network-plugin={parent.replace('~', '/')} " \
           f"--network-plugin-dir={os.path.dirname(os.path.dirname(path))})"


def _cni(path: str) -> str:
    if not os.path.exists(path):
        raise Failure(f"{path} is a dangling link to {os.readlink(path)}")
    if not os.access(path, os.X_OK):
        raise Failure(f"{path} is not executable")
    return f"{path} -> {os.path.realpath(path)}"


def _none() -> str:
    raise Failure(f"no front-end installed: no exec plugin under {EXEC_DIR} (and doctor "
                  f"was not run as one), no {os.path.join(CNI_BIN_DIR, CNI_NAME)}")
