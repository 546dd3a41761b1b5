"""`python -m bench.cluster [--quick] [--parts 1,2]`: the cluster benchmark's parts in turn.

Parts are the modules `bench/cluster/partN_*.py`, found by name and run in order of N.
Each declares its sizes (FULL, QUICK: option name -> value) and options, and returns its
tables; this runner prints them with their targets and writes them to OUT/cluster.md.
Sizes are options so that the suite can run a small version (tests/e2e/test_bench.py).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import re
import signal
import sys
import tempfile
import time
from types import ModuleType
from typing import Sequence

from bench import machine

HERE = os.path.dirname(os.path.abspath(__file__))
PART = re.compile(r"part(\d+)_\w+$")


def parts() -> list[tuple[int, ModuleType]]:
    found = []
    for info in pkgutil.iter_modules([HERE]):
        match = PART.match(info.name)
        if match:
            found.append((int(match.group(1)), importlib.import_module(f"bench.cluster.{info.name}")))
    return sorted(found, key=lambda item: item[0])


def parse(argv: Sequence[str] | None, found: list[tuple[int, ModuleType]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench --cluster",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: a smoke test of the harness, not a verdict")
    parser.add_argument("--parts", help="comma-separated part numbers (default: all: "
                        + ", ".join(f"{n} {m.TITLE}" for n, m in found) + ")")
    parser.add_argument("--out", help="results folder (default bench/results, for --quick "
                        "bench/results/quick)")
    parser.add_argument("--workdir", default="/var/tmp",
                        help="where etcd's data and the plugin's files go (default /var/tmp)")
    for _, module in found:
        module.options(parser)
    args = parser.parse_args(argv)
    for _, module in found:
        for key, value in (module.QUICK if args.quick else module.FULL).items():
            if getattr(args, key) is None:
                setattr(args, key, value)
    results = os.path.join(os.path.dirname(HERE), "results")
    args.out = args.out or (os.path.join(results, "quick") if args.quick else results)
    wanted = {int(n) for n in args.parts.split(",")} if args.parts else {n for n, _ in found}
    args.selected = [(n, m) for n, m in found if n in wanted]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    found = parts()
    args = parse(argv, found)
    # SIGTERM as Ctrl-C: each part's `finally` stops its etcd and removes its folder.
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.time()
    sections = []
    for number, module in args.selected:
        _say(f"part {number}: {module.TITLE}")
        with tempfile.TemporaryDirectory(prefix="bench-cluster-", dir=args.workdir) as workdir:
            for table in module.run(args, workdir):
                text = table.render()
                print(text, flush=True)
                sections.append(text)
    m = machine.describe()
    head = (f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} on {m['cores']} cores ({m['cpu']}), "
            f"{m['memory_gb']} GB, {m['os']}, kernel {m['kernel']}, Python {m['python']}; "
            f"run took {round(time.time() - started)} s"
            + (" (--quick: small sizes, a smoke test, not a verdict)" if args.quick else "") + ".")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "cluster.md"), "w", encoding="utf-8") as handle:
        handle.write(head + "\n\n" + "\n".join(sections))
    print(head)
    print(f"wrote {os.path.join(args.out, 'cluster.md')}")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _say(message: str) -> None:
    print(f"bench --cluster: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
