"""`status` imports nothing it does not need (issue 23: 1.91 x a bare interpreter).

The kubelet calls `status` for every pod on every sync. Profiled with `python -X
importtime` on a regular install, a third of its cost over `python -I -c pass` was the
standard library it imported on the way: `json` (and the `re` and `enum` that `json`
imports), `hashlib` (which loads OpenSSL) and `collections` (for type hints). The
first test runs the exec front-end's status in a fresh interpreter without `site` (so
no editable-install finder preloads modules) and names every module the call added;
the others show that what replaced those imports gives the same answers.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from plugin import jsontext, names
from plugin.config import cache, loader
from plugin.core import recordfile
from plugin.errors import InputError
from tests.unit.test_config import write

ROOT = Path(__file__).resolve().parents[2]
INFRA = "cd" * 32
# What a status answer may import beyond the interpreter's start: the plugin's own leaf
# modules, `__future__` (their annotations), the C helpers of json and SHA-256, and `gc`
# (built into the interpreter: the launcher turns the cyclic collector off).
ALLOWED_STDLIB = {"__future__", "_json", "_sha2", "_sha256", "gc"}

PROGRAM = """
import os, sys  # os: every start with site (as the launcher's) has it
sys.path.insert(0, sys.argv[1])
before = set(sys.modules)
from plugin.config import cache
cache.RUNTIME_DIR = sys.argv[2]
from plugin.frontends import exec_cli
code = exec_cli.main(["myplugin", "--config", sys.argv[3], "status", "default", "22-a",
                      sys.argv[4]])
added = sorted(set(sys.modules) - before)
sys.stdout.flush()
print("imported:", code, *added)
"""


def test_a_status_answer_imports_only_the_plugin_leaves(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = write(tmp_path, f"state_dir: {state}\nstatus: {{report: vlan}}\n")
    loader.load(config)  # remembers the facts, as the first full call on a node does
    (state / "attachments").mkdir(parents=True)
    with open(recordfile.path(str(state), INFRA), "w", encoding="utf-8") as handle:
        json.dump({"kind": recordfile.KIND, "version": recordfile.VERSION, "infra_id": INFRA,
                   "attachments": [{"addresses": ["10.0.0.9/24"], "primary": True}]}, handle)
    proc = subprocess.run([sys.executable, "-S", "-c", PROGRAM, str(ROOT), cache.RUNTIME_DIR,
                           config, INFRA], capture_output=True, text=True, timeout=60)
    answer, report = proc.stdout.splitlines() or ["", ""]
    _, code, *added = report.split()
    assert code == "0" and json.loads(answer)["ip"] == "10.0.0.9", proc.stdout + proc.stderr
    extra = [m for m in added
             if m.split(".")[0] not in ("plugin", "pipework_wrapper") and m not in ALLOWED_STDLIB]
    assert extra == [], f"status imported {extra}"


# --- the rules without `re`, checked against the expressions they replace -------------

RULES = {
    names.namespace: re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z"),
    names.pod: re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z"),
    names.infra_id: re.compile(r"[0-9a-f]{64}\Z"),
    names.ifname: re.compile(r"[A-Za-z0-9_.-]{1,15}\Z"),
}
PLAINTEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
EDGES = ["", "-", "a", "a-", "-a", "a.b", "a..b", ".a", "a.", "A", "a_b", "ab\n", "\u0430",
         "é", "a b", "0" * 63, "0" * 64, "f" * 64, "F" * 64, "g" + "0" * 63, "x" * 15,
         "x" * 16, ".", "..", "a/b", "１", "a-b.c-d", "a" * 253, "a" * 254]


def _accepts(rule, value: str) -> bool:
    try:
        rule(value)
    except InputError:
        return False
    return True


def _samples(count: int = 4000) -> list[str]:
    alphabet = "ab09AZ-._/ \n\u0430"
    rng = random.Random(23)
    return EDGES + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
                    for _ in range(count)]


@pytest.mark.parametrize("rule", list(RULES), ids=lambda r: r.__name__)
def test_each_rule_accepts_what_its_expression_matched(rule) -> None:
    expression = RULES[rule]
    for value in _samples():
        expected = bool(expression.match(value))
        if rule is names.pod:
            expected = expected and len(value) <= 253
        if rule is names.ifname:
            expected = expected and value not in (".", "..")
        assert _accepts(rule, value) == expected, repr(value)


@pytest.mark.parametrize("rule", list(RULES), ids=lambda r: r.__name__)
@pytest.mark.parametrize("value", [["a"], 7, None, b"a" * 64])
def test_each_rule_refuses_what_is_no_text(rule, value) -> None:
    """The expressions raised TypeError, which config reading reports; refused, either way."""
    assert not _accepts(rule, value)
    assert not names.plaintext(value) and not names.is_docker_id(value)


def test_plaintext_and_docker_ids_as_before() -> None:
    for value in _samples():
        assert names.plaintext(value) == bool(PLAINTEXT.match(value)), repr(value)
        assert names.is_docker_id(value) == bool(RULES[names.infra_id].match(value))


def test_file_names_hash_as_hashlib_does() -> None:
    import hashlib

    for infra in ("a" * 64, "cni-sandbox-1", "\u0430"):
        assert names.state_key(infra) == hashlib.sha256(infra.encode()).hexdigest()[:40]


# --- JSON through json's accelerator, as json itself reads it ------------------------

DOCUMENTS = [
    '{"kind": "vlanpipe.attachments", "version": 1, "attachments": [{"addresses": '
    '["10.0.0.1/24", "fd00::1/64"], "primary": true, "vlan": 22, "mac": ""}]}',
    '  [1, -2.5e3, null, false, "\\u00e9\\n", {"a": {}}]\n', '"x"', "0", "NaN",
    '[-Infinity, Infinity]', '{"a": 1, "a": 2}', "\ufeff{}", "", "   ", "{", "[1,]",
    '{"a": 1} {"b": 2}', "01", '"\t"', "[1] x", "nul", '{"a" 1}', "[" * 5 + "]" * 5,
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_json_reads_as_json_loads(text: str) -> None:
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            jsontext.loads(text)
        return
    assert repr(jsontext.loads(text)) == repr(expected)


@pytest.mark.parametrize("text", ["10.0.0.1", "fd00::1", 'a"b\\c', "é\u2028", ""])
def test_quote_as_json_dumps(text: str) -> None:
    assert jsontext.quote(text) == json.dumps(text)
