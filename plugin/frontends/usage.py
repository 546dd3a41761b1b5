"""What `--help` says, for the program and for each command, under the name it was run as.

The kubelet runs the plugin as DIR/NAME/NAME (`myplugin`), a CNI runtime as
/opt/cni/bin/vlanpipe, an operator as `vlanpipe` or `vlanpipe-cni`: usage and
error lines use that name, so what they suggest can be typed as printed.
"""

from __future__ import annotations

import os
import sys

DEFAULT_NAME = "vlanpipe"

# Each command's synopsis lines and what it does; `pin` has three subcommands.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "make the bridges and the uplink (the kubelet runs it once)"),
    "setup": ("setup NAMESPACE POD INFRA_CONTAINER_ID", "attach the pod (kubelet)"),
    "teardown": ("teardown NAMESPACE POD INFRA_CONTAINER_ID", "detach the pod (kubelet)"),
    "status": ("status NAMESPACE POD INFRA_CONTAINER_ID", "the pod's address (kubelet)"),
    "install": ("install [--dir DIR] [--name NAME]",
                "put the plugin where the kubelet looks (DIR/NAME/NAME)"),
    "gc": ("gc [--dry-run] [--json]\ngc --node NAME [--force] [--dry-run] [--json]",
           "remove what gone pods and broken interfaces left; with --node, free the etcd "
           "leases of a node gone for good"),
    "list": ("list [--json]\nlist --cluster [--json]",
             "one entry per attachment, with its state; --cluster: every lease in etcd"),
    "doctor": ("doctor [--json]", "check this node and its pods; exit 1 if a check fails"),
    "reconcile": ("reconcile", "put back the plugin's OpenFlow rules (bridges fail closed, "
                  "each pod's port security rules, rules of gone ports swept); prints what "
                  "it changed"),
    "watch": ("watch [--interval SECONDS]", "run reconcile whenever ovs-vswitchd restarts, "
              "until killed (the vlanpipe-watch systemd unit runs it)"),
    "pin": ("pin set NAMESPACE/POD VLAN [ADDRESS/LEN]\npin get NAMESPACE/POD\n"
            "pin del NAMESPACE/POD", "the operator's pins in etcd (vlan.pinned: true)"),
    "pin set": ("pin set NAMESPACE/POD VLAN [ADDRESS/LEN]",
                "pin a pod to a VLAN, and to an address of the network serving it"),
    "pin get": ("pin get NAMESPACE/POD", "print a pod's pin as JSON (exit 1 if none)"),
    "pin del": ("pin del NAMESPACE/POD", "remove a pod's pin"),
    "lease": ("lease clear ADDRESS",
              "free an address kept out of use since another host answered for it at a "
              "pod's setup (doctor lists them); run it once that host is gone"),
    "version": ("version", "the plugin's version and commit, Python, the pipework found"),
}
KUBELET = ("init", "setup", "teardown", "status")


def prog() -> str:
    """The name this process was run as, or vlanpipe when run as `python -m/-c`."""
    name = os.path.basename(sys.argv[0]) if sys.argv else ""
    if not name or name.startswith("-") or name.endswith(".py"):
        return DEFAULT_NAME
    return name


def program() -> str:
    from plugin.frontends.exitcodes import describe

    name = prog()
    lines = [f"usage: {name} [--config PATH] COMMAND ...", f"       {name} --help | --version",
             "kubelet commands:"]
    for command, (synopsis, _) in COMMANDS.items():
        if command == "install":
            lines.append("operator commands:")
        if command != "pin":
            lines += [f"  {line}" for line in synopsis.splitlines()]
    lines.append(f"'{name} COMMAND --help' says what a command does.")
    return "\n".join(lines) + "\n" + describe()


def command(name: str) -> str:
    import textwrap

    synopsis, what = COMMANDS[name]
    first, *more = synopsis.splitlines()
    lines = [f"usage: {prog()} {first}"] + [f"       {prog()} {line}" for line in more]
    return "\n".join(lines + textwrap.wrap(what, 78, initial_indent="  ",
                                           subsequent_indent="  "))
