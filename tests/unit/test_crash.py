"""A bug in a command still ends as one clear line and a logged traceback, on every Python.

The front-ends' last resort formats the traceback of an unexpected exception into the log.
`traceback.format_exception(exc)` with one argument needs Python 3.10: under 3.9 the handler
itself raised, the caller got a bare traceback instead of the one line (exec) or the CNI
error document (CNI), and the log got nothing. The unit tier runs under the oldest declared
Python too (scripts/test), which is where these tests fail on the old code.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from plugin.frontends import exec_cli
from plugin.frontends.cni import main as cni_main


class Bug(Exception):
    """What no code path expects."""


def _boom(*_args: object) -> None:
    raise Bug("a bug on purpose")


def _logged(tmp_path: Path) -> dict:
    lines = (tmp_path / "log" / "vlanpipe.log").read_text().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


def test_exec_crash_is_one_line_and_a_logged_traceback(tmp_path, node, monkeypatch, capsys):
    monkeypatch.delenv("CNI_COMMAND", raising=False)
    monkeypatch.setitem(exec_cli.COMMANDS, "init", _boom)
    code = exec_cli.main(["myplugin", "--config", str(node), "init"])
    out, err = capsys.readouterr()
    assert code != 0 and out == ""
    assert err.splitlines() == [
        "vlanpipe: internal error: Bug: a bug on purpose; "
        "this is a bug; the traceback is in the plugin log"], err
    record = _logged(tmp_path)
    assert record["outcome"] == "crash", record
    assert record["error"].startswith("Traceback (most recent call last):"), record
    assert "Bug: a bug on purpose" in record["error"], record


def test_cni_crash_is_error_999_and_a_logged_traceback(tmp_path, node, monkeypatch, capsys):
    monkeypatch.setattr(cni_main, "_handler", lambda command: _boom)
    for key, value in {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c" * 64,
                       "CNI_NETNS": "/proc/1/ns/net", "CNI_IFNAME": "net1",
                       "CNI_PATH": "/usr/lib/cni", "VLANPIPE_CONFIG": str(node)}.items():
        monkeypatch.setenv(key, value)
    netconf = {"cniVersion": "1.0.0", "name": "vlan-net", "type": "vlanpipe", "vlan": 22}
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(netconf).encode())))
    status = cni_main.main()
    out, _ = capsys.readouterr()
    document = json.loads(out)
    assert status == 1 and document["code"] == 999, document
    assert document["msg"] == "internal error: Bug: a bug on purpose", document
    record = _logged(tmp_path)
    assert record["outcome"] == "crash" and "Bug: a bug on purpose" in record["error"], record
