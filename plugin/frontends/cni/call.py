"""One CNI call as the handlers see it: environment, network config, plugin config, log."""

from __future__ import annotations

from dataclasses import dataclass

from plugin.calllog import CallLog
from plugin.frontends.cni.delegate import Delegate
from plugin.frontends.cni.env import Environment
from plugin.frontends.cni.injected import CallConf
from plugin.config.schema import Config


@dataclass
class Call:
    """One CNI invocation: its environment, the tenant's network config, the node's config."""

    env: Environment
    conf: CallConf
    config: Config
    log: CallLog

    def delegate(self) -> Delegate | None:
        """The delegated IPAM plugin, if the network config names one."""
        if not self.conf.ipam_type:
            return None
        return Delegate(self.conf, self.env, self.config.cni.ipam_data_dir)

    def warn(self, text: str) -> None:
        """Something accepted but not done as asked: said in the log, never on stdout."""
        self.log.warn(text)
