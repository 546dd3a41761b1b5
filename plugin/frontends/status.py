"""The answer to the kubelet's `status`: one file read, no Docker, no subprocess.

`report: docker` (the reference plugin's behaviour) prints nothing, and the
kubelet takes the pod IP from Docker's eth0; `report: vlan` reports the
primary VLAN attachment's address from the plugin's record.
"""

from __future__ import annotations

from plugin import names
from plugin.config.loader import check_private_dir
from plugin.config.schema import Config
from plugin.core.records import RecordStore


def pod_ip(config: Config, namespace: str, pod: str, infra_id: str) -> str | None:
    names.namespace(namespace)
    names.pod(pod)
    names.infra_id(infra_id)
    if config.status_report == "docker":
        return None
    check_private_dir(config.state_dir, "state_dir")
    records = RecordStore(config.state_dir).load(infra_id)
    primary = next((r for r in records if r.primary), None)
    return primary.ip if primary else None
