"""The CNI_* environment variables: which each command needs, and the pod they name.

Checked once, up front, with code 4 naming the variable: a runtime that sends
a bad value learns which one, and nothing on the host has been touched yet.
CNI_PATH is needed only to find a delegated IPAM plugin, so it is asked for
there (the spec makes it optional for ADD, CHECK and DEL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from plugin import names
from plugin.frontends.cni.errors import INVALID_ENVIRONMENT, CniError
from plugin.errors import InputError, shown
from plugin.identity import Identity

REQUIRED: dict[str, tuple[str, ...]] = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),
    "GC": (),
    "STATUS": (),
    "VERSION": (),
}


@dataclass(frozen=True)
class Environment:
    """The CNI_* variables of one call, validated."""

    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: str = ""
    path: tuple[str, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)  # all: a delegate gets the same


def read(environ: Mapping[str, str]) -> Environment:
    command = environ.get("CNI_COMMAND", "")
    if command not in REQUIRED:
        raise CniError(INVALID_ENVIRONMENT,
                       f"CNI_COMMAND {shown(command)} is not a CNI command" if command
                       else "CNI_COMMAND is not set",
                       f"use one of {', '.join(REQUIRED)}")
    missing = [name for name in REQUIRED[command] if not environ.get(name)]
    if missing:
        raise CniError(INVALID_ENVIRONMENT,
                       f"required environment variables missing: {', '.join(missing)}",
                       f"CNI {command} needs {', '.join(REQUIRED[command])}")
    env = Environment(
        command=command,
        container_id=environ.get("CNI_CONTAINERID", ""),
        netns=environ.get("CNI_NETNS", ""),
        ifname=environ.get("CNI_IFNAME", ""),
        args=environ.get("CNI_ARGS", ""),
        path=tuple(p for p in environ.get("CNI_PATH", "").split(":") if p),
        variables=dict(environ),
    )
    if env.container_id and not names.plaintext(env.container_id):
        raise CniError(INVALID_ENVIRONMENT, f"CNI_CONTAINERID {shown(env.container_id)} has characters "
                       "the spec does not allow", "letters, digits, '_', '.', '-'")
    if env.ifname:
        _checked("CNI_IFNAME", env.ifname, names.ifname)
    return env


def identity(cni_args: str) -> Identity:
    """K8S_POD_NAMESPACE, K8S_POD_NAME and K8S_POD_INFRA_CONTAINER_ID from `K=V;K=V`.

    Other keys (IgnoreUnknown, K8S_POD_UID, a user's own) are for other plugins
    of the chain and are left alone. Absent keys stay empty: a runtime that is
    not Kubernetes (cnitool) names no pod.
    """
    pairs = {}
    for item in filter(None, cni_args.split(";")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CniError(INVALID_ENVIRONMENT, f"CNI_ARGS item {shown(item)} is not KEY=VALUE",
                           "separate KEY=VALUE pairs with ';'")
        pairs[key] = value
    namespace = pairs.get("K8S_POD_NAMESPACE", "")
    pod = pairs.get("K8S_POD_NAME", "")
    infra = pairs.get("K8S_POD_INFRA_CONTAINER_ID", "")
    if namespace:
        _checked("CNI_ARGS K8S_POD_NAMESPACE", namespace, names.namespace)
    if pod:
        _checked("CNI_ARGS K8S_POD_NAME", pod, names.pod)
    return Identity(namespace, pod, infra)


def _checked(variable: str, value: str, check: Callable[[str], str]) -> None:
    try:
        check(value)
    except InputError as exc:
        raise CniError(INVALID_ENVIRONMENT, f"{variable}: {exc.message}", exc.hint) from None
