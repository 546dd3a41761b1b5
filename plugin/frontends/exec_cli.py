"""The kubelet's exec network-plugin protocol (kubelet 1.0-1.5), and the entry of the
operator commands (`operator.py`), with `--help` and `--version` for all of them.

    NAME init | setup NS POD INFRA_ID | teardown NS POD INFRA_ID | status NS POD INFRA_ID

This is the only place where errors become output and exit codes. The kubelet
reads stdout and stderr together, so a call prints at most one line: the
status JSON, or one error line on stderr. Imports are deferred to the
commands that need them: `status` runs on every pod sync and must not pay for
plumbum or the Docker SDK.
"""

from __future__ import annotations

import gc
import os
import sys
import time

from plugin.errors import Failure, UsageError
from plugin.frontends import usage
from plugin.frontends.exitcodes import exit_code

HELP_FLAGS = ("--help", "-h")

POD_COMMANDS = ("setup", "teardown", "status")
# The kubelet asks for status on every pod sync: it is logged only when it fails (or with
# log.debug), so the log of a node that runs for months stays small.
QUIET_WHEN_OK = ("status",)

TYPE_CHECKING = False  # `collections.abc` costs status ~1 ms (issue 23): for types only
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


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
    if command in (*HELP_FLAGS, "help"):
        print(usage.program())
        return 0
    if command == "--version":
        command = "version"
    if any(flag in rest for flag in HELP_FLAGS) and command in usage.COMMANDS:
        sub = f"{command} {rest[0]}" if command == "pin" and rest[0] not in HELP_FLAGS else ""
        print(usage.command(sub if sub in usage.COMMANDS else command))
        return 0
    if command == "version":
        from plugin.frontends.operator import version

        if rest:
            return _fail(UsageError("version takes no arguments"))
        print(version(config_path, executable))
        return 0
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
    if command not in POD_COMMANDS and command != "init":
        gc.enable()  # see `run`: an operator's command may run long over many objects
        from plugin.frontends.operator import require_root

        try:
            require_root(command)
        except Failure as exc:
            return _fail(exc)
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
        print(f"{usage.prog()}: {exc.message}\n{usage.program()}", file=sys.stderr)
    else:
        print(f"{usage.prog()}: {exc.line()}", file=sys.stderr)
    return exit_code(exc)


def _startup_ms(started: float) -> float | None:
    """Interpreter start and module imports: from process start until `main` ran."""
    try:
        with open("/proc/self/stat", encoding="utf-8") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="utf-8") as handle:
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
    from plugin.core.policy import plan
    from plugin.identity import Identity

    pod = Identity.checked(*rest)
    core = _core(config, log)
    wants = plan(config, pod, core.allocators.pinned)
    sandbox = docker_sandbox(config, pod.infra_id)
    log.set(pid=sandbox.pid)
    core.attach(pod, wants, sandbox)


def cmd_teardown(config, log, rest: list[str]) -> None:
    from plugin.identity import Identity

    _core(config, log).detach(Identity.checked(*rest))


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


def _operator(name: str) -> Callable:
    """An operator command, imported only when it runs."""
    def run(config, log, rest: list[str]) -> None:
        from plugin.frontends import operator

        getattr(operator, f"cmd_{name}")(config, log, rest)
    return run


COMMANDS: dict[str, Callable] = {
    "gc": _operator("gc"),
    "list": _operator("list"),
    "doctor": _operator("doctor"),
    "pin": _operator("pin"),
    "reconcile": _operator("reconcile"),
    "watch": _operator("watch"),
    "lease": _operator("lease"),
    "init": cmd_init,
    "setup": cmd_setup,
    "teardown": cmd_teardown,
    "status": cmd_status,
}


def run() -> None:
    """The installed entry point: exit at once, skipping interpreter finalisation.

    Tearing down every imported module costs 10-20 ms per call and nothing needs it:
    the log line is written with os.write and the output is flushed here.

    A pod's call runs without the cyclic garbage collector: it allocates mostly while
    importing, where the collector's passes find nothing to free, and otherwise waits on
    its tools. Those passes were 3.4 ms of a quiet teardown's 83 ms of CPU (issue 23: 110
    at once are CPU-bound); reference counting frees the rest, and what a cycle holds goes
    at exit.
    An operator's command, which may run long over many objects (`list --cluster`,
    `watch`), turns the collector back on (`main`).
    """
    gc.disable()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
