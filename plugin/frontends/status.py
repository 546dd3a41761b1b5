"""The answer to the kubelet's `status`: one file read, no Docker, no subprocess.

`report: docker` (the reference plugin's behaviour) prints nothing, and the
kubelet takes the pod IP from Docker's eth0; `report: vlan` reports the
primary VLAN attachment's first address from the plugin's record.

The kubelet asks on every pod sync, so this is the plugin's most frequent
call: it imports the plugin's small leaf modules only (not even `json`:
`plugin.jsontext`), and takes its config facts from `plugin.config.cache` when the
file is unchanged (`answer_from_cache`); anything that cache cannot settle
goes the full way through `exec_cli`, which also logs a failure.
"""

from __future__ import annotations

import sys

from plugin import jsontext, names
from plugin.config import cache, files
from plugin.core import recordfile
from plugin.errors import Failure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def pod_ip(facts: dict[str, Any], namespace: str, pod: str, infra_id: str) -> str | None:
    """The address to report, or None to print nothing (`facts`: see `cache.facts`)."""
    names.namespace(namespace)
    names.pod(pod)
    names.infra_id(infra_id)
    if facts["report"] == "docker":
        return None
    files.check_private_dir(facts["state_dir"], "state_dir")
    return recordfile.primary_ip(facts["state_dir"], infra_id)


def answer(ip: str | None) -> None:
    """The kubelet's PodNetworkStatus on stdout; nothing for no address."""
    if ip:
        sys.stdout.write('{"apiVersion": "v1beta1", "kind": "PodNetworkStatus", "ip": '
                         f"{jsontext.quote(ip)}}}\n")


def answer_from_cache(config_path: str | None, args: list[str]) -> bool:
    """Answer with the remembered config; False (nothing printed) when the file changed,
    debug logging is on, or the call fails: the full path then answers and logs."""
    entry = cache.recall(config_path)
    if entry is None or entry["facts"].get("debug", True):
        return False
    try:
        ip = pod_ip(entry["facts"], *args)
    except (Failure, KeyError, TypeError):
        return False
    answer(ip)
    return True
