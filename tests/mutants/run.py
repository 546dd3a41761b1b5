"""Plant each bug of the catalogue in a copy of the tree, run the tests, say which survive.

The working tree is never touched: the tracked and untracked files are copied
to a temporary folder with its own small virtual environment (this tree's
installed packages, the copy's own `plugin` and `pipework_wrapper`, so the
plugin the e2e tests install runs the mutated code). Each mutant is one
replacement of exact text in one file; the unit tier runs against it (as
`scripts/test --unit` runs it, stopping at the first failure) and, with
`--e2e`, so do the e2e tests the catalogue names for it. The file is put back before the next mutant; the copy is deleted at
the end. Not part of CI: run it by hand (`scripts/mutants`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass

from tests.mutants.catalogue import MUTANTS, Mutant

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT_TIMEOUT = 600.0
E2E_TIMEOUT = 1200.0
PYTEST = ["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]


@dataclass
class Outcome:
    mutant: Mutant
    unit: str          # killed / survived / timeout
    unit_by: str = ""  # the first test that failed
    e2e: str = ""      # killed / survived / timeout, or "" when not run
    e2e_by: str = ""
    seconds: float = 0.0

    @property
    def killed(self) -> bool:
        return self.unit != "survived" or self.e2e in ("killed", "timeout")


def copy_tree(target: str) -> None:
    listed = subprocess.run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard", "-z"],
                            check=True, capture_output=True, timeout=60).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = os.path.join(ROOT, name)
        if not os.path.isfile(source):
            continue  # deleted in the work tree but not yet in git
        os.makedirs(os.path.dirname(os.path.join(target, name)), exist_ok=True)
        shutil.copy2(source, os.path.join(target, name), follow_symlinks=False)


def make_venv(target: str) -> str:
    """A venv in the copy: this tree's site-packages for the dependencies, the copy for
    the plugin (the editable install's finder is not loaded), and the console scripts."""
    venv = os.path.join(target, ".venv")
    base = getattr(sys, "_base_executable", "") or os.path.realpath(sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = os.path.join(venv, "bin", "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    with open(os.path.join(site, "vlanpipe-mutants.pth"), "w", encoding="utf-8") as handle:
        handle.write(f"{target}\n{sysconfig.get_paths()['purelib']}\n")
    for name, function in (("vlanpipe", "plugin.frontends.exec_cli:run"),
                           ("vlanpipe-cni", "plugin.frontends.entry:cni")):
        module, attribute = function.split(":")
        path = os.path.join(venv, "bin", name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f"#!{python}\nimport sys\nfrom {module} import {attribute}\n"
                         f"sys.exit({attribute}())\n")
        os.chmod(path, 0o755)
    found = subprocess.run([python, "-I", "-c", "import plugin; print(plugin.__file__)"],
                           check=True, capture_output=True, text=True, timeout=60).stdout
    if not found.startswith(target + os.sep):
        raise SystemExit(f"mutants: the copy's interpreter imports plugin from {found.strip()}")
    return python


def unit_command(python: str) -> list[str]:
    """As scripts/test runs the unit tier: no daemon reachable, when this user may unshare."""
    inner = [python, *PYTEST, "tests/unit"]
    if os.geteuid() == 0 and shutil.which("unshare"):
        return ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c",
                'mount -t tmpfs -o mode=0755 tmpfs /run && exec "$@"', "sh", *inner]
    return inner


def run_tests(command: list[str], cwd: str, timeout: float) -> tuple[str, str]:
    """(killed / survived / timeout, the first failing test)."""
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    except subprocess.TimeoutExpired:
        return "timeout", ""
    if done.returncode == 0:
        return "survived", ""
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.M)
    return "killed", failed.group(1) if failed else f"pytest exit {done.returncode}"


def plant(copy: str, mutant: Mutant) -> str:
    """Apply the mutant; return the file's original text."""
    path = os.path.join(copy, mutant.file)
    with open(path, encoding="utf-8") as handle:
        original = handle.read()
    if original.count(mutant.old) != 1:
        raise SystemExit(f"mutants: {mutant.name}: the text to replace occurs "
                         f"{original.count(mutant.old)} times in {mutant.file}, not once; "
                         "update the catalogue")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(original.replace(mutant.old, mutant.new))
    _forget_bytecode(path)
    return original


def restore(copy: str, mutant: Mutant, original: str) -> None:
    path = os.path.join(copy, mutant.file)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(original)
    _forget_bytecode(path)


def _forget_bytecode(path: str) -> None:
    """A plant and its restore may fall in one second with one size: no stale .pyc then."""
    shutil.rmtree(os.path.join(os.path.dirname(path), "__pycache__"), ignore_errors=True)


def report(outcomes: list[Outcome], e2e: bool) -> int:
    width = max(len(o.mutant.name) for o in outcomes)
    for o in outcomes:
        unit = f"{o.unit} {o.unit_by}".strip()
        line = f"{o.mutant.name:<{width}}  {o.mutant.area:<9} unit: {unit}"
        if o.e2e:
            line += f"; e2e: {o.e2e} {o.e2e_by}".rstrip()
        print(f"{line}  ({o.seconds:.0f} s)")
    total = len(outcomes)
    by_unit = sum(o.unit != "survived" for o in outcomes)
    killed = sum(o.killed for o in outcomes)
    print(f"\nunit tier alone: {by_unit}/{total} killed ({100 * by_unit / total:.0f} %)")
    if e2e:
        named = [o for o in outcomes if o.e2e]
        by_e2e = sum(o.e2e != "survived" for o in named)
        print(f"named e2e tests alone: {by_e2e}/{len(named)} of the mutants that name them")
        print(f"unit tier or named e2e tests: {killed}/{total} killed "
              f"({100 * killed / total:.0f} %)")
    survivors = [o.mutant.name for o in outcomes if not o.killed]
    if survivors:
        print("survived: " + ", ".join(survivors))
    return 0 if not survivors else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutants", description=__doc__.split("\n")[0])
    parser.add_argument("--e2e", action="store_true",
                        help="also run the e2e tests each mutant names (needs the host set up, "
                             "as for scripts/test)")
    parser.add_argument("--only", default="", help="comma-separated mutant names")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - {m.name for m in MUTANTS}
    if unknown:
        raise SystemExit(f"mutants: no mutant named {', '.join(sorted(unknown))}")
    if args.list:
        for m in chosen:
            print(f"{m.name:<40} {m.area:<9} {m.file}\n    {m.why}")
        return 0
    with tempfile.TemporaryDirectory(prefix="vlanpipe-mutants-") as copy:
        copy_tree(copy)
        python = make_venv(copy)
        print(f"mutants: {len(chosen)} mutants over a copy in {copy}; baseline first", flush=True)
        verdict, failed = run_tests(unit_command(python), copy, UNIT_TIMEOUT)
        if verdict != "survived":
            raise SystemExit(f"mutants: the unit tier fails without any mutant ({failed})")
        outcomes = []
        for mutant in chosen:
            started = time.monotonic()
            original = plant(copy, mutant)
            try:
                outcome = Outcome(mutant, *run_tests(unit_command(python), copy, UNIT_TIMEOUT))
                if args.e2e and mutant.e2e:
                    outcome.e2e, outcome.e2e_by = run_tests([python, *PYTEST, *mutant.e2e],
                                                            copy, E2E_TIMEOUT)
            finally:
                restore(copy, mutant, original)
            outcome.seconds = time.monotonic() - started
            outcomes.append(outcome)
            print(f"  {mutant.name}: unit {outcome.unit} {outcome.unit_by}"
                  f"{f'; e2e {outcome.e2e} {outcome.e2e_by}' if outcome.e2e else ''}", flush=True)
    print()
    return report(outcomes, args.e2e)


if __name__ == "__main__":
    sys.exit(main())
