"""The CNI front-end: environment and stdin in, one JSON document on stdout, exit status.

The only place where errors become CNI error JSON. Nothing else is ever
written to stdout (the runtime parses it whole); the call is logged to the
log file the node config names. The node config is found as the exec
front-end finds it; the network config on stdin only chooses within it. Modules that need plumbum or the Docker SDK are imported
only by the commands that use them: VERSION needs neither.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, Callable, Optional

from plugin.calllog import CallLog
from plugin.config import files, loader, netconf, tenant
from plugin.frontends.cni import env as cni_env
from plugin.frontends.cni import injected, tenantjson, versions
from plugin.frontends.cni.call import Call
from plugin.frontends.cni.errors import EXIT_STATUS, INTERNAL, IO_FAILURE, CniError, document
from plugin.errors import Failure

Handler = Callable[[Call], Optional[dict[str, Any]]]


def main() -> int:
    version = versions.LATEST
    log = None
    try:
        env = cni_env.read(os.environ)
        stdin = _stdin()
        if env.command == "VERSION":
            _emit(versions.report(stdin))
            return 0
        parsed, refused = _decoded(env.command, stdin)
        if parsed is not None:
            requested = netconf.version_of(parsed)
            versions.require(env.command, requested)
            version = requested
        node = loader.load(files.find(None, sys.argv[0]))  # root's: the same search as exec
        log = CallLog(node.log_file, f"cni-{env.command.lower()}", node.debug)
        log.set(container_id=env.container_id[:12], ifname=env.ifname, netns=env.netns)
        conf = injected.parse(parsed) if parsed is not None else injected.unread(version, refused)
        log.set(network=conf.name, cni_version=version)
        call = Call(env, conf, node if parsed is None else tenant.bind(conf, node, env.ifname),
                    log)
        for warning in conf.warnings:
            call.warn(warning)
        output = _handler(env.command)(call)
    except Failure as exc:
        if log:
            log.write("error", exc.line())
        _emit(document(exc, version))
        return EXIT_STATUS
    except Exception as exc:
        if log:
            log.write("crash", traceback.format_exc())
        _emit(document(CniError(INTERNAL, f"internal error: {type(exc).__name__}: {exc}",
                                "this is a bug; the traceback is in the plugin log"), version))
        return EXIT_STATUS
    log.write("ok")
    if output is not None:
        _emit(output)
    return 0


def _decoded(command: str, stdin: bytes) -> tuple[dict[str, Any] | None, str]:
    """The network config; for a DEL of one past the limits, None and why: DEL must not fail,
    so it goes by the attachment record and the node's config alone."""
    try:
        return tenantjson.decode(stdin), ""
    except tenantjson.Unbounded as exc:
        if command != "DEL":
            raise
        return None, exc.message


def _stdin() -> bytes:
    """At most one byte more than a network config may hold: more is never read."""
    try:
        return sys.stdin.buffer.read(tenantjson.MAX_BYTES + 1)
    except (OSError, AttributeError) as exc:
        raise CniError(IO_FAILURE, f"cannot read the network config from stdin ({exc})",
                       "the runtime must pass the network config on stdin") from None


def _handler(command: str) -> Handler:
    from plugin.frontends.cni import attach, gc, status

    handlers: dict[str, Handler] = {"ADD": attach.add, "DEL": attach.delete,
                                    "CHECK": attach.check, "STATUS": status.status,
                                    "GC": gc.gc}
    return handlers[command]


def _emit(body: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(body) + "\n")
    sys.stdout.flush()
