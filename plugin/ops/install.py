"""Put the plugin where the kubelet looks: DIR/NAME/NAME, executable.

With `--network-plugin=NAME --network-plugin-dir=DIR` the kubelet runs
DIR/NAME/NAME; the reference plugin's flags (NAME `myplugin`) keep working.
The installed file is a two-line launcher bound to this interpreter, so the
kubelet's PATH and working directory do not matter; `-I` keeps the kubelet's
PYTHON* variables and the working directory from steering a root process.
"""

from __future__ import annotations

import os
import sys
import tempfile

from plugin.errors import UsageError

DEFAULT_DIR = "/usr/libexec/kubernetes/kubelet-plugins/net/exec"
DEFAULT_NAME = "myplugin"


def install(args: list[str]) -> str:
    options = parse_options(args)
    directory = os.path.join(options["--dir"], options["--name"].replace("/", "~"))
    os.makedirs(directory, mode=0o755, exist_ok=True)
    target = os.path.join(directory, os.path.basename(directory))
    launcher = f"#!{sys.executable} -I\nfrom plugin.frontends.exec_cli import run\nrun()\n"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".install-")
    with os.fdopen(fd, "w") as handle:
        handle.write(launcher)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    return target


def parse_options(args: list[str]) -> dict[str, str]:
    """The checked options, before anything is written. scripts/node-install runs this
    from its tree (a checkout or the plugin's wheel) before it makes a venv, so a bad
    name fails with nothing created."""
    options = {"--dir": DEFAULT_DIR, "--name": DEFAULT_NAME}
    pairs = list(zip(args[::2], args[1::2]))
    if len(args) % 2 or any(key not in options for key, _ in pairs):
        raise UsageError(f"install takes [--dir DIR] [--name NAME], got {' '.join(args)!r}")
    options.update(pairs)
    if not options["--name"] or options["--name"].startswith(".") or "~" in options["--name"]:
        raise UsageError(f"install: plugin name {options['--name']!r} cannot be used",
                         "use a plain name such as myplugin, or vendor/name")
    return options
