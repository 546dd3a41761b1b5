"""The operator commands of the exec front-end: gc, list, doctor, pin, lease, version.

The kubelet's four commands stay in `exec_cli` (and `status` must not import
this module). Each command here prints its answer on stdout, within 80
columns, or JSON with `--json`; failures are raised for `exec_cli` to turn
into one line and an exit code.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from typing import Any, Iterable

from plugin.errors import Failure, NeedsRoot, UsageError

NEEDS_ROOT = ("doctor", "gc", "list", "pin", "lease", "reconcile", "watch")


def require_root(command: str) -> None:
    """As another user every check of doctor fails for that one cause, and gc and list
    cannot read root's state: say so once."""
    uid = os.geteuid()
    if command in NEEDS_ROOT and uid != 0:
        raise NeedsRoot(f"{command} must run as root, not as uid {uid}", "run it as root (sudo)")


def option(rest: list[str], name: str) -> tuple[str | None, list[str]]:
    """The value of `name VALUE` in `rest`, and the rest without it."""
    if name not in rest:
        return None, rest
    at = rest.index(name)
    if at + 1 >= len(rest) or rest[at + 1].startswith("--"):
        raise UsageError(f"{name} needs a value")
    return rest[at + 1], rest[:at] + rest[at + 2:]


def flags(rest: list[str], allowed: set[str]) -> set[str]:
    unknown = set(rest) - allowed
    if unknown:
        raise UsageError(f"unknown option {sorted(unknown)[0]!r}")
    return set(rest)


def _json(rows: list[Any]) -> None:
    from dataclasses import asdict

    from plugin import identity

    print(json.dumps([identity.flat(r) if isinstance(r, identity.Identified) else asdict(r)
                      for r in rows], indent=1))


def _json_stream(rows: Iterable[Any]) -> None:
    """The same document as `_json`, written a row at a time as the rows come."""
    from dataclasses import asdict

    sep = "[\n"
    for row in rows:
        sys.stdout.write(sep + textwrap.indent(json.dumps(asdict(row), indent=1), " "))
        sep = ",\n"
    sys.stdout.write("\n]\n" if sep != "[\n" else "[]\n")


def cmd_gc(config, log, rest: list[str]) -> None:
    """Every removal (or, dry, every one it would make) and everything it could not judge,
    one line or one object each; then, if something was not judged, Docker's exit code."""
    from dataclasses import asdict

    from plugin.errors import DockerUnavailable
    from plugin.frontends import render
    from plugin.ops.actions import NOT_JUDGED

    node, rest = option(rest, "--node")
    given = flags(rest, {"--force", "--dry-run", "--json"} if node is not None
                  else {"--dry-run", "--json"})
    dry_run = "--dry-run" in given
    if node is not None:
        from plugin.ops.cluster import free_node

        freed = free_node(config, node, "--force" in given, dry_run)
        actions = freed.actions
        log.set(node=node, notes=freed.notes)
        for note in freed.notes:  # on stderr: --json stays one document
            print(f"note: {note}", file=sys.stderr)
        quiet = f"node {node} holds no lease in etcd"
    else:
        from plugin.ops.gc import sweep

        actions = sweep(config, log, dry_run=dry_run)
        quiet = "nothing to sweep"
    log.set(actions=[a.line() for a in actions], dry_run=dry_run)
    if "--json" in given:
        print(json.dumps([asdict(a) for a in actions], indent=1))
    else:
        print(render.plain([a.line() for a in actions]) if actions else quiet)
    unjudged = [a for a in actions if a.outcome == NOT_JUDGED]
    if unjudged:
        raise DockerUnavailable(f"gc: {len(unjudged)} not judged (no Docker)",
                                "start dockerd and run gc again")


def cmd_reconcile(config, log, rest: list[str]) -> None:
    """What it changed, one line per bridge or pod (nothing when all was in place); then
    the first failure, for its exit code."""
    from plugin.frontends import render
    from plugin.ops.reconcile import reconcile

    flags(rest, set())
    outcome = reconcile(config)
    log.set(changed=outcome.changed)
    if outcome.changed:
        print(render.plain(outcome.changed))
    if outcome.failures:
        first = outcome.failures[0]
        raise type(first)(f"reconcile: {len(outcome.failures)} failed; first: {first.message}",
                          first.hint)


def cmd_watch(config, log, rest: list[str]) -> None:
    """Runs until killed: each reconcile that changed or failed something is printed with
    the time (the journal's) and logged as a line of its own."""
    import time

    from plugin.calllog import CallLog
    from plugin.frontends import render
    from plugin.ops.watch import watch

    value, rest = option(rest, "--interval")
    flags(rest, set())
    try:
        interval = float(value) if value is not None else 0.2
    except ValueError:
        interval = -1.0
    if not 0.01 <= interval <= 60:
        raise UsageError(f"--interval takes seconds between 0.01 and 60, got {value!r}")

    def report(outcome) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        print(render.plain(f"{stamp} {line}" for line in outcome.changed), flush=True)
        event = CallLog(config.log_file, "watch", config.debug)
        event.set(changed=outcome.changed)
        event.write("error" if outcome.failures else "ok",
                    outcome.failures[0].line() if outcome.failures else "")

    watch(config, report, interval)


def cmd_list(config, log, rest: list[str]) -> None:
    from dataclasses import replace

    from plugin.frontends import render

    given = flags(rest, {"--json", "--cluster"})
    if "--cluster" in given:
        from plugin.ops.cluster import leases

        found = leases(config)
        if "--json" in given:
            _json_stream(found)
        else:
            for text in render.cluster(found):
                print(text)
        return
    from plugin.ops.listing import rows
    from plugin.ops.liveness import Liveness

    listed = [replace(r, who=replace(r.who, infra_id=r.infra_id[:12]))
              for r in rows(config, Liveness(config))]
    if "--json" in given:
        _json(listed)
    else:
        print(render.attachments(listed))


def cmd_doctor(config, log, rest: list[str]) -> None:
    from plugin.frontends import render
    from plugin.ops.doctor import run_checks

    given = flags(rest, {"--json"})
    checks = run_checks(config, sys.argv[0])
    if "--json" in given:
        _json(checks)
    else:
        print(render.checks(checks))
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise Failure(f"doctor: {len(failed)} of {len(checks)} checks failed",
                      "apply the fixes above")


def version(config_path: str | None, executable: str) -> str:
    """One line: the plugin's version and commit (when run from a git checkout), Python,
    and the pipework the config would run, with its generation."""
    import platform
    import shutil
    from importlib import metadata

    from pipework_wrapper import command, pipework

    try:
        release = metadata.version("vlanpipe")
    except metadata.PackageNotFoundError:
        release = "unknown"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    commit = "unknown"
    if os.path.exists(os.path.join(root, ".git")):
        try:
            commit = command.run("git", ["-C", root, "rev-parse", "--short=12", "HEAD"],
                                 timeout=5).stdout.strip() or commit
        except Failure:
            pass
    program = "pipework"
    try:
        from plugin.config import files, loader

        program = loader.load(files.find(config_path, executable)).pipework
    except Failure:
        pass
    path = shutil.which(program)
    try:
        found = (f"{pipework.describe(pipework.generation(path))} at {path}" if path
                 else f"{program} not found")
    except Failure as exc:
        found = f"{path} does not answer ({exc.message})"
    return (f"vlanpipe {release} (commit {commit}), Python {platform.python_version()}, "
            f"pipework: {found}")


def cmd_pin(config, log, rest: list[str]) -> None:
    from plugin.ops import pins

    action, args = (rest[0], rest[1:]) if rest else ("", [])
    if action == "set" and len(args) in (2, 3):
        pin = pins.put(config, args[0], args[1], args[2] if len(args) == 3 else None)
        log.set(pin=args[0], value=pin)
        print(json.dumps(pin))
    elif action == "get" and len(args) == 1:
        print(json.dumps(pins.get(config, args[0])))
    elif action == "del" and len(args) == 1:
        log.set(pin=args[0])
        print(pins.delete(config, args[0]))
    else:
        raise UsageError(f"pin takes set NAMESPACE/POD VLAN [ADDRESS/LEN] | get NAMESPACE/POD "
                         f"| del NAMESPACE/POD, got {' '.join(rest)!r}")


def cmd_lease(config, log, rest: list[str]) -> None:
    """`lease clear ADDRESS`: the operator's word that the host which answered for a
    conflicted address is gone (plugin/ops/conflicts.py)."""
    if len(rest) != 2 or rest[0] != "clear":
        raise UsageError(f"lease takes clear ADDRESS, got {' '.join(rest)!r}")
    from plugin.ops import conflicts

    log.set(lease=rest[1])
    print(conflicts.clear(config, rest[1]))
