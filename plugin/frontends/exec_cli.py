"""The kubelet's exec network-plugin protocol (kubelet 1.0-1.5), plus operator commands.

    NAME init | setup NS POD INFRA_ID | teardown NS POD INFRA_ID | status NS POD INFRA_ID

This is the only place where errors become output and exit codes. The kubelet
reads stdout and stderr together, so a call prints at most one line: the
status JSON, or one error line on stderr. Imports are deferred to the
commands that need them: `status` runs on every pod sync and must not pay for
plumbum or the Docker SDK.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence

from plugin.errors import (AllocationError, BackendError, ConfigError, ContainerError,
                           ContainerNotFound, DockerUnavailable, Failure, InputError, ToolFailed,
                           UsageError)

PROG = "vlanpipe"
USAGE = f"""usage: {PROG} [--config PATH] COMMAND
kubelet commands:
  init
  setup NAMESPACE POD INFRA_CONTAINER_ID
  teardown NAMESPACE POD INFRA_CONTAINER_ID
  status NAMESPACE POD INFRA_CONTAINER_ID
operator commands:
  install [--dir DIR] [--name NAME]   put the plugin where the kubelet looks (DIR/NAME/NAME)
  gc [--dry-run] [--json]             remove ports, veths and leases of gone containers
  gc --node NAME [--force] [--dry-run] [--json]
                                      free the etcd leases of a node gone for good
  list [--json]                       one row per attachment, with its state
  list --cluster [--json]             every lease in etcd, its node, when it was last seen
  doctor [--json]                     check this node; exit 1 if a check fails"""
POD_COMMANDS = ("setup", "teardown", "status")
# The kubelet asks for status on every pod sync: it is logged only when it fails (or with
# log.debug), so the log of a node that runs for months stays small.
QUIET_WHEN_OK = ("status",)
# The one place failures become exit codes; the first matching class wins.
EXIT_CODES: tuple[tuple[type[Failure], int], ...] = (
    (UsageError, 2),
    (ConfigError, 3),
    (InputError, 4),
    ((ContainerError, ContainerNotFound, DockerUnavailable), 5),
    ((BackendError, ToolFailed), 6),
    (AllocationError, 7),
)


def main(argv: Sequence[str] | None = None) -> int:
    if os.environ.get("CNI_COMMAND"):
        from plugin.frontends.cni.main import main as cni_main

        return cni_main()
    argv = list(sys.argv if argv is None else argv)
    started = time.monotonic()
    executable, args = argv[0], argv[1:]
    config_path = None
    if args[:1] == ["--config"]:
        if len(args) < 2:
            return _fail(UsageError("--config needs a path"))
        config_path, args = args[1], args[2:]
    if not args:
        return _fail(UsageError("no command given"))
    command, rest = args[0], args[1:]
    if command in POD_COMMANDS and len(rest) != 3:
        return _fail(UsageError(f"{command} takes NAMESPACE POD INFRA_CONTAINER_ID, "
                                f"got {len(rest)} arguments"))
    if command == "init" and rest:
        return _fail(UsageError("init takes no arguments"))
    if command == "install":
        return _install(rest)
    if command == "status":
        from plugin.config.files import find
        from plugin.frontends.status import answer_from_cache

        if answer_from_cache(find(config_path, executable), rest):
            return 0
    handler = COMMANDS.get(command)
    if handler is None:
        return _fail(UsageError(f"unknown command {command!r}"))
    return _run(handler, command, rest, config_path, executable, started)


def _run(handler: Callable, command: str, rest: list[str], config_path: str | None,
         executable: str, started: float) -> int:
    log = None
    try:
        from plugin.calllog import CallLog
        from plugin.config import files, loader

        config = loader.load(files.find(config_path, executable))
        log = CallLog(config.log_file, command, config.debug, started)
        log.phases["config"] = round((time.monotonic() - started) * 1000, 2)
        if command in POD_COMMANDS:
            log.set(namespace=rest[0], pod=rest[1], infra_id=rest[2][:12])
        handler(config, log, rest)
    except Failure as exc:
        if log:
            log.write("error", exc.line(), _startup_ms(started))
        return _fail(exc)
    except Exception as exc:
        if log:
            import traceback

            log.write("crash", traceback.format_exc(), _startup_ms(started))
        return _fail(Failure(f"internal error: {type(exc).__name__}: {exc}",
                                 "this is a bug; the traceback is in the plugin log"))
    if command not in QUIET_WHEN_OK or config.debug or log.warnings:
        log.write("ok", startup_ms=_startup_ms(started))
    return 0


def _fail(exc: Failure) -> int:
    """One line on stderr; a usage error adds the usage text, as the reference plugin does.
    What a command printed before it failed (doctor's table) comes first."""
    sys.stdout.flush()
    if isinstance(exc, UsageError):
        print(f"{PROG}: {exc.message}\n{USAGE}", file=sys.stderr)
    else:
        print(f"{PROG}: {exc.line()}", file=sys.stderr)
    return exit_code(exc)


def exit_code(exc: Failure) -> int:
    return next((code for kinds, code in EXIT_CODES if isinstance(exc, kinds)), 1)


def _startup_ms(started: float) -> float | None:
    """Interpreter start and module imports: from process start until `main` ran."""
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    return max(0.0, (age - (time.monotonic() - started)) * 1000)


def _core(config, log):
    from plugin.core.attach import Core

    return Core(config, log)


def cmd_init(config, log, rest: list[str]) -> None:
    from plugin.ops.node import init

    init(config, log)


def cmd_setup(config, log, rest: list[str]) -> None:
    from plugin.core.plumbing import docker_sandbox
    from plugin.core.policy import PodRef, plan

    pod = PodRef.checked(*rest)
    core = _core(config, log)
    wants = plan(config, pod, core.allocators.pinned)
    sandbox = docker_sandbox(config, pod.infra_id)
    log.set(pid=sandbox.pid)
    core.attach(pod, wants, sandbox)


def cmd_teardown(config, log, rest: list[str]) -> None:
    from plugin.core.policy import PodRef

    _core(config, log).detach(PodRef.checked(*rest))


def cmd_status(config, log, rest: list[str]) -> None:
    from plugin.config.cache import facts
    from plugin.frontends import status

    ip = status.pod_ip(facts(config), *rest)
    if ip:
        log.set(address=ip)
    status.answer(ip)


def _install(rest: list[str]) -> int:
    """Needs no config: it only writes the launcher the kubelet will run."""
    from plugin.ops import install

    try:
        path = install.install(rest)
    except Failure as exc:
        return _fail(exc)
    except OSError as exc:
        return _fail(Failure(f"install failed: {exc}", "run it as root, or choose --dir"))
    print(f"installed {path}")
    return 0


def _option(rest: list[str], name: str) -> tuple[str | None, list[str]]:
    """The value of `name VALUE` in `rest`, and the rest without it."""
    if name not in rest:
        return None, rest
    at = rest.index(name)
    if at + 1 >= len(rest) or rest[at + 1].startswith("--"):
        raise UsageError(f"{name} needs a value")
    return rest[at + 1], rest[:at] + rest[at + 2:]


def _flags(rest: list[str], allowed: set[str]) -> set[str]:
    unknown = set(rest) - allowed
    if unknown:
        raise UsageError(f"unknown option {sorted(unknown)[0]!r}")
    return set(rest)


def _print(rows: list, as_json: bool, columns: tuple[str, ...]) -> None:
    from dataclasses import asdict

    if as_json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
        return
    table = [columns] + [tuple(str(getattr(r, c)) for c in columns) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def cmd_gc(config, log, rest: list[str]) -> None:
    node, rest = _option(rest, "--node")
    if node is not None:
        from plugin.ops.cluster import free_node

        flags = _flags(rest, {"--force", "--dry-run", "--json"})
        actions = free_node(config, node, "--force" in flags, "--dry-run" in flags)
        log.set(node=node, actions=actions, dry_run="--dry-run" in flags)
        if "--json" in flags:
            print(json.dumps(actions, indent=1))
        else:
            print("\n".join(actions) if actions else f"node {node} holds no lease in etcd")
        return
    from plugin.ops.gc import sweep

    flags = _flags(rest, {"--dry-run", "--json"})
    actions = sweep(config, log, dry_run="--dry-run" in flags)
    log.set(actions=actions, dry_run="--dry-run" in flags)
    if "--json" in flags:
        print(json.dumps(actions, indent=1))
    else:
        print("\n".join(actions) if actions else "nothing to sweep")


def cmd_list(config, log, rest: list[str]) -> None:
    flags = _flags(rest, {"--json", "--cluster"})
    if "--cluster" in flags:
        from plugin.ops.cluster import leases

        _print(leases(config), "--json" in flags, ("network", "address", "node", "node_seen",
                                                   "namespace", "pod", "interface"))
        return
    from plugin.ops.listing import rows as listed
    from plugin.ops.liveness import Liveness

    rows = listed(config, Liveness(config))
    _print([_short_id(r) for r in rows], "--json" in flags,
           ("namespace", "pod", "infra_id", "interface", "port", "bridge", "vlan", "address",
            "mac", "state"))


def _short_id(row):
    from dataclasses import replace

    return replace(row, infra_id=row.infra_id[:12])


def cmd_doctor(config, log, rest: list[str]) -> None:
    from plugin.ops.doctor import run_checks

    flags = _flags(rest, {"--json"})
    checks = run_checks(config, sys.argv[0])
    _print(checks, "--json" in flags, ("name", "ok", "detail", "fix"))
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise Failure(f"doctor: {len(failed)} check(s) failed: {', '.join(failed)}",
                          "apply the fixes listed above")


COMMANDS: dict[str, Callable] = {
    "gc": cmd_gc,
    "list": cmd_list,
    "doctor": cmd_doctor,
    "init": cmd_init,
    "setup": cmd_setup,
    "teardown": cmd_teardown,
    "status": cmd_status,
}


def run() -> None:
    """The installed entry point: exit at once, skipping interpreter finalisation.

    Tearing down every imported module costs 10-20 ms per call and nothing needs it:
    the log line is written with os.write and the output is flushed here.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
