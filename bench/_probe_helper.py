"""Run the installed plugin inside this fresh interpreter and record what it did.

    python bench/_probe_helper.py REPORT.json LAUNCHER COMMAND ARGS...

An audit hook sees every process the plugin starts (subprocess, exec, fork,
posix_spawn), and `sys.modules` at exit shows what it imported: that is how
the benchmark checks that `status` has "no Docker SDK import and no
subprocess on its path" and counts the commands behind setup and teardown.
It is a separate script because the checks need a pristine interpreter.
"""

import json
import os
import runpy
import sys

SPAWN_EVENTS = ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork", "os.system",
                "os.spawn", "os.forkpty")


def main() -> None:
    report_path, launcher, *args = sys.argv[1:]
    spawned: list[list[str]] = []

    def hook(event: str, payload: tuple) -> None:
        if event == "subprocess.Popen":
            spawned.append([str(a) for a in payload[1]])
        elif event in SPAWN_EVENTS:
            spawned.append([event])

    def leave(status: int) -> None:
        raise SystemExit(status)

    os._exit = leave  # the launcher leaves with os._exit; this report must still be written
    sys.addaudithook(hook)
    sys.argv = [launcher, *args]
    sys.path[0] = os.path.dirname(os.path.abspath(launcher))  # as `python LAUNCHER` would have it
    code = 0
    try:
        runpy.run_path(launcher, run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    roots = sorted({name.split(".")[0] for name in sys.modules})
    with open(report_path, "w", encoding="utf-8") as handle:
        json.dump({"code": code, "spawned": spawned, "module_roots": roots,
                   "module_count": len(sys.modules)}, handle)
    sys.exit(code)


if __name__ == "__main__":
    main()
