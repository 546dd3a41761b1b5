"""A corpus of bad input, fed to every entry the way its caller feeds it: the kubelet's argv,
a CNI runtime's environment and stdin (prevResult included), and the node's config values.

Each must give one line that names the input (exec) or one CNI error document (CNI), the
exit code of its class (exec: 2 usage, 3 config, 4 input; CNI: a spec code below 100, or
the plugin's documented code for what it is),
nothing created, and never "internal error". No daemon is needed: every case fails before
the plugin would ask one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.hostnet import wait_until

ID = "c" * 64
POD = ("default", "22-web", ID)
EXEC = (sys.executable, "-I", "-c", "from plugin.frontends.exec_cli import run; run()")
CNI = (sys.executable, "-I", "-c", "import sys; from plugin.frontends.entry import cni; "
                                   "sys.exit(cni())")  # as the console script vlanpipe-cni
NETCONF = {"cniVersion": "1.0.0", "name": "vlan-net", "type": "vlanpipe", "vlan": 22}

EXEC_CASES = [  # argv after the program name, exit code, text the line must hold
    ([], 2, "no command given"),
    (["setup"], 2, "setup takes NAMESPACE POD INFRA_CONTAINER_ID, got 0"),
    (["setup", "default", "22-web"], 2, "got 2 arguments"),
    (["teardown", *POD, "extra"], 2, "got 4 arguments"),
    (["status", *POD, "extra"], 2, "got 4 arguments"),
    (["frobnicate"], 2, "unknown command 'frobnicate'"),
    (["init", "now"], 2, "init takes no arguments"),
    (["--config"], 2, "--config needs a path"),
    (["gc", "--everything"], 2, "unknown option '--everything'"),
    (["list", "--yaml"], 2, "unknown option '--yaml'"),
    (["reconcile", "--all"], 2, "unknown option '--all'"),
    (["watch", "--interval", "soon"], 2, "--interval takes seconds between 0.01 and 60, "
                                        "got 'soon'"),
    (["watch", "--interval", "0"], 2, "--interval takes seconds between 0.01 and 60, got '0'"),
    (["watch", "--interval"], 2, "--interval needs a value"),
    (["install", "--name", ".hidden"], 2, "plugin name '.hidden' cannot be used"),
    (["install", "--dir"], 2, "install takes [--dir DIR] [--name NAME]"),
    (["setup", "Bad_NS", "22-web", ID], 4, "namespace 'Bad_NS'"),
    (["setup", "default", "22_web", ID], 4, "pod name '22_web'"),
    (["setup", "default", "2" * 254, ID], 4, "is not a valid Kubernetes pod name"),
    (["setup", "default", "nginx-abc", ID], 4, "pod name 'nginx-abc' has no VLAN prefix"),
    (["setup", "default", "0-web", ID], 4, "gives VLAN 0"),
    (["setup", "default", "4095-web", ID], 4, "gives VLAN 4095"),
    (["setup", "default", "\u0662\u0662-web", ID], 4, "pod name"),
    (["setup", "default", "22-web", "abc"], 4, "infra container id 'abc'"),
    (["setup", "default", "22-web", "A" * 64], 4, "is not a 64-hex Docker container id"),
    (["status", "default", "22-web", "../../etc/passwd"], 4, "infra container id"),
    (["teardown", "default", "22-web", "f" * 300], 4, "infra container id"),
    (["teardown", "default", "22-web\udcff", ID], 4, "pod name"),
    (["setup", "default", "2" * 100_000, ID], 4, "is not a valid Kubernetes pod name"),
    (["setup", "Bad\nNS" * 10_000, "22-web", ID], 4, "namespace 'Bad\\nNS"),
    (["pin"], 2, "pin takes set NAMESPACE/POD VLAN"),
    (["pin", "set", "default/22-web"], 2, "pin takes set NAMESPACE/POD VLAN"),
    (["pin", "set", "22-web", "22"], 4, "pod '22-web' is not NAMESPACE/POD"),
    (["pin", "get", "default/22_web"], 4, "pod name '22_web'"),
    (["pin", "set", "default/22-web", "22"], 3, "etcd is not configured"),
    (["version", "now"], 2, "version takes no arguments"),
]

CONFIG_CASES = [  # config.yaml text, argv, exit code, text
    ("timeouts: {ovs: .nan}\n", POD, 3, "timeouts.ovs"),
    ("timeouts: {pipework: .inf}\n", POD, 3, "timeouts.pipework"),
    ("timeouts: {lock: 1e400}\n", POD, 3, "timeouts.lock"),
    ("vlan: {rule: regex, pattern: '(?P<vlan>[a-z]+)-'}\n", ("default", "abc-web", ID), 4,
     "gives VLAN abc"),
    ("vlan: {rule: regex, pattern: '(?P<vlan>\\d+'}\n", POD, 3, "vlan.pattern"),
    ("state_dir: relative/state\n", POD, 3, "state_dir"),
    ("log: {file: logs/vlanpipe.log}\n", POD, 3, "log.file"),
    ("pipework: bin/pipework\n", POD, 3, "pipework"),
    ("node_name: 'node one'\n", POD, 3, "node_name"),
    ("bridge: a_very_long_bridge_name\n", POD, 3, "bridge"),
    ("interface: 'eth 1'\n", POD, 3, "interface"),
    ("networks: [{name: '../up', subnet: 10.0.0.0/24}]\n", POD, 3, "networks[0].name"),
    ("networks: [{name: n, subnet: 10.0.0.1/24}]\n", POD, 3, "networks[0].subnet"),
    ("networks: [{name: n, subnet: 10.0.0.0/24, gateway: 10.1.0.1}]\n", POD, 3, "gateway"),
    ("etcd: {endpoints: ['http://u:secret@127.0.0.1']}\n", POD, 3, "etcd.endpoints[0]"),
    ("cni: {bridges: ['has space']}\n", POD, 3, "cni.bridges[0]"),
    ("cni: {ipam_data_dir: relative}\n", POD, 3, "cni.ipam_data_dir"),
    ("bridge_mtu: 100\n", POD, 3, "bridge_mtu"),
    ("cni: {mtu: {min: 9000, max: 1500}}\n", POD, 3, "cni.mtu"),
    ("cni: {mtu: {min: 68}}\n", POD, 3, "cni.mtu.min"),
    ("cni: {mtu: {most: 1500}}\n", POD, 3, "cni.mtu.most"),
    ("port_security: 'no'\n", POD, 3, "port_security"),
    ("networks: [{name: n, subnet: 10.0.0.0/24, allowed_address_pairs: [{ip: 10.0.1.0/24}]}]\n",
     POD, 3, "networks[0].allowed_address_pairs[0]"),
    ("networks: [{name: n, subnet: 10.0.0.0/24, allowed_address_pairs: [{ip: 10.0.1.9, "
     "mac: 'ff:ff:ff:ff:ff:ff'}]}]\n", POD, 3, "not a unicast MAC"),
    ("cni: {address_pair_cidrs: [10.0.0.1/24]}\n", POD, 3, "cni.address_pair_cidrs[0]"),
    ("cni: {port_security_choice: 1}\n", POD, 3, "cni.port_security_choice"),
    ("[unclosed\n", POD, 3, "not valid YAML"),
    ("- a list\n", POD, 3, "must be a mapping"),
    ("\xff\xfe: 1\n", POD, 3, "config"),
]

CNI_ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": ID, "CNI_NETNS": "/proc/1/ns/net",
           "CNI_IFNAME": "net1", "CNI_PATH": "/usr/lib/cni"}
CNI_ENV_CASES = [  # environment overrides (None: removed), code, text in msg
    ({"CNI_COMMAND": None}, 4, "CNI_COMMAND is not set"),
    ({"CNI_COMMAND": "SETUP"}, 4, "CNI_COMMAND 'SETUP'"),
    ({"CNI_CONTAINERID": None}, 4, "CNI_CONTAINERID"),
    ({"CNI_CONTAINERID": "-x"}, 4, "CNI_CONTAINERID"),
    ({"CNI_CONTAINERID": "a;b"}, 4, "CNI_CONTAINERID"),
    ({"CNI_CONTAINERID": "a/../b"}, 4, "CNI_CONTAINERID"),
    ({"CNI_NETNS": None}, 4, "CNI_NETNS"),
    ({"CNI_IFNAME": None}, 4, "CNI_IFNAME"),
    ({"CNI_IFNAME": "a/b"}, 4, "CNI_IFNAME"),
    ({"CNI_IFNAME": "x" * 16}, 4, "CNI_IFNAME"),
    ({"CNI_IFNAME": ".."}, 4, "CNI_IFNAME"),
    ({"CNI_ARGS": "K8S_POD_NAME"}, 4, "CNI_ARGS item"),
    ({"CNI_ARGS": "K8S_POD_NAMESPACE=Bad_NS"}, 4, "K8S_POD_NAMESPACE"),
    ({"CNI_ARGS": "K8S_POD_NAME=" + "x" * 300}, 4, "K8S_POD_NAME"),
    ({"CNI_ARGS": "K8S_POD_INFRA_CONTAINER_ID=" + "b" * 64}, 4, "K8S_POD_INFRA_CONTAINER_ID"),
    ({"CNI_CONTAINERID": "ctr-ns-web", "CNI_NETNS": "/nonexistent/ns"}, 4,
     "CNI_NETNS /nonexistent/ns does not exist"),
    ({"CNI_CONTAINERID": "ctr-ns-web", "CNI_NETNS": "/etc/hostname"}, 4,
     "is not a network namespace"),
    # Echoed values are escaped and cut short, however long (an env string holds 128 KiB).
    ({"CNI_COMMAND": "X\n" * 50_000}, 4, "CNI_COMMAND 'X\\nX"),
    ({"CNI_CONTAINERID": "a;" + "b" * 100_000}, 4, "CNI_CONTAINERID 'a;b"),
    ({"CNI_ARGS": "x" * 100_000}, 4, "CNI_ARGS item"),
    ({"CNI_ARGS": "K8S_POD_NAME=" + "x\t" * 50_000}, 4, "K8S_POD_NAME"),
]

DEEP = b"[" * 100_000 + b"]" * 100_000
NESTED = json.loads("[" * 600 + "]" * 600)  # 1.2 KB: the 999 and 250 KB traceback
HUGE = json.dumps({**NETCONF, "x": ""}).encode()[:-3] + b'"' + b"x" * (1 << 20) + b'"}'
CNI_STDIN_CASES = [  # command, stdin (bytes or a dict over NETCONF), code, text in msg
    ("ADD", b"", 6, "not JSON"),
    ("ADD", b"{", 6, "not JSON"),
    ("ADD", b"\xff\xfe", 6, "not JSON"),
    ("ADD", b"[1, 2]", 6, "not a JSON object"),
    # Named: pytest before 9 puts a bytes parameter whole into the test id and so into
    # PYTEST_CURRENT_TEST, and a 200 kB variable makes every exec fail (E2BIG).
    pytest.param("ADD", DEEP, 7, "nests deeper than 32 levels", id="ADD-deep-nesting"),
    ("ADD", {"ipam": {"type": "host-local", "subnet": "10.0.0.0/24", "x": NESTED}}, 7,
     "nests deeper than 32 levels (in 'ipam')"),
    ("CHECK", {"ipam": {"type": "host-local", "x": NESTED}}, 7, "(in 'ipam')"),
    ("ADD", {"args": {"cni": {"vlan": NESTED}}}, 7, "(in 'args')"),
    ("ADD", {"runtimeConfig": {"ips": NESTED}}, 7, "(in 'runtimeConfig')"),
    ("CHECK", {"prevResult": {"ips": NESTED}}, 7, "(in 'prevResult')"),
    ("STATUS", {"cniVersion": "1.1.0", "x": NESTED}, 7, "(in 'x')"),
    pytest.param("ADD", HUGE, 7, "larger than 1048576 bytes", id="ADD-huge"),
    ("ADD", {"cniVersion": 1}, 7, "cniVersion"),
    ("ADD", {"cniVersion": "9.9.9"}, 1, "incompatible CNI version '9.9.9'"),
    ("CHECK", {"cniVersion": "0.3.1"}, 1, "does not allow CHECK"),
    ("ADD", {"name": "bad name"}, 7, "'name'"),
    ("ADD", {"type": ""}, 7, "'type'"),
    ("ADD", {"vlan": 0}, 7, "'vlan'"),
    ("ADD", {"vlan": 4095}, 7, "'vlan'"),
    ("ADD", {"vlan": "22"}, 7, "'vlan'"),
    ("ADD", {"vlan": True}, 7, "'vlan'"),
    ("ADD", {"vlan": {"rule": "magic"}}, 7, "vlan.rule"),
    ("ADD", {"vlan": {"rule": "regex", "pattern": "^(?P<vlan>\\d+)-(a|aa)*$"}}, 7,
     "only the node's config"),  # a tenant's pattern could backtrack for hours
    ("ADD", {"mtu": 100}, 7, "'mtu'"),
    ("ADD", {"mtu": 1500.5}, 7, "'mtu'"),
    ("ADD", {"mtu": 576}, 7, "is not an MTU this node lets networks use (cni.mtu: 1280-9000)"),
    ("ADD", {"bridge": "x" * 16}, 7, "'bridge'"),
    ("ADD", {"bridge": "has space"}, 7, "'bridge'"),
    ("ADD", {"ipam": []}, 7, "'ipam'"),
    ("ADD", {"ipam": {"type": "../../bin/sh"}}, 7, "ipam.type"),
    ("ADD", {"ipam": {"type": "host-local", "dataDir": "/etc"}}, 7, "ipam.dataDir"),
    ("ADD", {"ipam": {"type": "dhcp"}}, 7, "'ipam.type' = 'dhcp' is not an IPAM plugin"),
    # host-local reads keys without regard to case: DataDir is dataDir, ResolvConf resolvConf.
    ("ADD", {"ipam": {"type": "host-local", "subnet": "10.0.0.0/24", "DataDir": "etc"}}, 7,
     "ipam.DataDir"),
    ("ADD", {"ipam": {"type": "host-local", "subnet": "10.0.0.0/24", "ResolvConf": "etc/x"}},
     7, "ipam.ResolvConf"),
    ("ADD", {"IPAM": {"type": "host-local", "dataDir": "etc"}}, 7, "'IPAM'"),
    ("ADD", json.dumps(NETCONF)[:-1].encode() + b', "ipam": {"type": "host-local", '
     b'"dataDir": "etc"}, "ipam": {"type": "host-local", "subnet": "10.0.0.0/24"}}', 7,
     "'ipam' twice"),
    ("ADD", {"args": {"cni": []}}, 7, "'args'"),
    ("ADD", {"args": {"cni": {"vlan": "abc"}}}, 7, "args.cni.vlan"),
    ("ADD", {"args": {"cni": {"vlan": "\u00b2"}}}, 7, "args.cni.vlan"),
    ("ADD", {"runtimeConfig": {"ips": ["not-an-ip"]}}, 7, "runtimeConfig.ips"),
    ("ADD", {"runtimeConfig": {"ips": ["10.0.0.5"]}}, 7, "prefix length"),
    ("ADD", {"runtimeConfig": {"ips": ["10.0.0.5/24", "10.0.0.6/24"]}}, 2, "more than one"),
    ("ADD", {"runtimeConfig": {"mac": "ff:ff:ff:ff:ff:ff"}}, 7, "runtimeConfig.mac"),
    ("ADD", {"runtimeConfig": []}, 7, "'runtimeConfig'"),
    ("ADD", {"dns": "8.8.8.8"}, 7, "'dns'"),
    ("ADD", {"port_security": False}, 7, "cni.port_security_choice: false"),
    ("ADD", {"port_security": "off"}, 7, "'port_security' = 'off' must be true or false"),
    ("ADD", {"allowed_address_pairs": [{"ip": "10.0.0.5"}]}, 7,
     "'allowed_address_pairs[0].ip' = '10.0.0.5' is outside"),
    ("ADD", {"allowed_address_pairs": [{"ip": "10.0.0.5", "mac": "ff:ff:ff:ff:ff:ff"}]}, 7,
     "'allowed_address_pairs[0]'"),
    ("ADD", {"allowed_address_pairs": {"ip": "10.0.0.5"}}, 7, "'allowed_address_pairs'"),
    ("ADD", {"vlanpipe": []}, 7, "'vlanpipe'"),
    ("ADD", {"vlanpipe": {"log": {"file": "/tmp/victim"}}}, 7, "node-level setting"),
    ("ADD", {"vlanpipe": {"pipework": "/tmp/evil"}}, 7, "node-level setting"),
    ("ADD", {"vlanpipe": {"network": "nowhere"}}, 7, "is not a network of this node"),
    ("GC", {"cniVersion": "1.1.0", "cni.dev/valid-attachments": [{"containerID": 1}]}, 7,
     "valid-attachments"),
    ("CHECK", {"prevResult": []}, 7, "prevResult"),
    ("CHECK", {"prevResult": {"interfaces": None, "ips": {}}}, 7, "prevResult.ips"),
    ("CHECK", {"prevResult": {"interfaces": None, "ips": []}}, 1003,
     "prevResult lists no interface net1"),  # null is no list, never an internal error
    ("CHECK", {"prevResult": {"interfaces": [1], "ips": []}}, 7, "prevResult.interfaces"),
    ("CHECK", {"prevResult": {"interfaces": [], "ips": [], "dns": []}}, 7, "prevResult.dns"),
    ("CHECK", {}, 7, "CHECK needs prevResult"),
    # Annotation values (Multus: cni-args, ips, mac) of 200 KB: a short, escaped message.
    ("ADD", {"args": {"cni": {"mac": "m\n" * 100_000}}}, 7, "args.cni.mac = 'm\\nm"),
    ("ADD", {"args": {"cni": {"ips": ["10.0.0.5/24\n" + "x" * 200_000]}}}, 7, "args.cni.ips"),
    ("ADD", {"args": {"cni": {"vlan": "9" * 200_000}}}, 7, "args.cni.vlan"),
    ("ADD", {"runtimeConfig": {"mac": "0a:" * 70_000}}, 7, "runtimeConfig.mac"),
    ("ADD", {"runtimeConfig": {"ips": ["10.0.0.5/24"] * 20_000}}, 2, "more than one"),
    ("ADD", {"cniVersion": "9\n" * 100_000}, 1, "incompatible CNI version"),
]


def short_log(tmp_path: Path) -> None:
    """The call's log line, if it got as far as writing one, is short: no echoed value in
    it is longer than a message may show."""
    log = tmp_path / "log" / "vlanpipe.log"
    lines = log.read_text().splitlines() if log.exists() else []
    assert all(len(line) < 2000 for line in lines), [line[:300] for line in lines]


def nothing_created(tmp_path: Path) -> None:
    state = tmp_path / "state"
    made = [str(p.relative_to(state)) for p in state.rglob("*") if p.is_file()] \
        if state.exists() else []
    assert made == [] and not Path("/tmp/victim").exists()


@pytest.mark.parametrize("argv,code,needle", EXEC_CASES)
def test_exec_arguments(tmp_path, node, argv, code, needle):
    prefix = [] if argv[:1] == ["--config"] else ["--config", str(node)]
    proc = subprocess.run([*EXEC, *prefix, *argv], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="surrogateescape", timeout=60, cwd=tmp_path)
    lines = proc.stdout.splitlines()
    assert proc.returncode == code, proc.stdout[:1000]
    assert needle in lines[0] and "internal error" not in proc.stdout
    assert len(lines[0]) < 500  # an echoed value is cut short
    assert (code == 2) == ("usage:" in proc.stdout)  # a usage error adds the usage text
    assert code == 2 or len(lines) == 1
    nothing_created(tmp_path)


@pytest.mark.parametrize("text,argv,code,needle", CONFIG_CASES)
def test_config_values(tmp_path, node, text, argv, code, needle):
    node.write_bytes(text.encode("utf-8", "surrogateescape") if "\xff" not in text
                     else b"\xff\xfe: 1\n")
    proc = subprocess.run([*EXEC, "--config", str(node), "setup", *argv],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == code, proc.stdout
    assert len(proc.stdout.splitlines()) == 1 and needle in proc.stdout, proc.stdout
    assert "internal error" not in proc.stdout and "secret" not in proc.stdout
    nothing_created(tmp_path)


def cni(tmp_path: Path, node: Path, env: dict, stdin: bytes) -> tuple[int, dict]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    environment.update({k: v for k, v in env.items() if v is not None},
                       VLANPIPE_CONFIG=str(node))
    proc = subprocess.run(CNI, input=stdin, capture_output=True, env=environment, timeout=60,
                          cwd=tmp_path)
    assert proc.stdout.count(b"\n") == 1, proc.stdout  # one document, nothing else
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize("overrides,code,needle", CNI_ENV_CASES)
def test_cni_environment(tmp_path, node, overrides, code, needle):
    status, error = cni(tmp_path, node, {**CNI_ENV, **overrides}, json.dumps(NETCONF).encode())
    assert status == 1 and error["code"] == code and needle in error["msg"], str(error)[:1000]
    assert set(error) == {"cniVersion", "code", "msg", "details"}
    assert "\n" not in error["msg"] and len(error["msg"]) < 500
    nothing_created(tmp_path)


@pytest.mark.parametrize("command,stdin,code,needle", CNI_STDIN_CASES)
def test_cni_stdin(tmp_path, node, command, stdin, code, needle):
    data = stdin if isinstance(stdin, bytes) else json.dumps({**NETCONF, **stdin}).encode()
    status, error = cni(tmp_path, node, {**CNI_ENV, "CNI_COMMAND": command}, data)
    assert status == 1 and error["code"] == code and needle in error["msg"], str(error)[:1000]
    assert "\n" not in error["msg"] and len(error["msg"]) < 500
    short_log(tmp_path)
    nothing_created(tmp_path)


def test_an_incompatible_version_is_answered_in_the_newest_naming_the_supported(tmp_path,
                                                                                node):
    """The runtime learns from the error itself which versions to use instead."""
    status, error = cni(tmp_path, node, CNI_ENV,
                        json.dumps({**NETCONF, "cniVersion": "9.9.9"}).encode())
    assert status == 1 and error["code"] == 1 and "9.9.9" in error["msg"], error
    assert error["cniVersion"] == "1.1.0" and "1.1.0" in error["details"], error


@pytest.mark.parametrize("stdin", [DEEP, HUGE, json.dumps({"x": NESTED}).encode()],
                         ids=["deep", "huge", "nested"])
def test_version_answers_whatever_stdin_holds(tmp_path, node, stdin):
    """VERSION is how a runtime learns what to send: nested or huge input gets the answer
    for the newest version, never an internal error."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    proc = subprocess.run(CNI, input=stdin, capture_output=True, timeout=60, cwd=tmp_path,
                          env={**environment, "CNI_COMMAND": "VERSION"})
    assert proc.returncode == 0, proc.stdout[:500]
    assert json.loads(proc.stdout)["cniVersion"] == "1.1.0"


def test_a_dangling_config_link_is_an_error_naming_it_never_the_defaults(tmp_path):
    """/etc/vlanpipe/config.yaml a link to a file that is gone: exec exits 3 and CNI answers 7,
    both naming the link, before anything is created."""
    link = tmp_path / "config.yaml"
    link.symlink_to(tmp_path / "gone.yaml")
    system = (f"import sys; from plugin.config import files; files.SYSTEM_PATH = {str(link)!r}; "
              "sys.argv[0] = '/nonexistent/plugin'; ")
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith("CNI_") and k != "VLANPIPE_CONFIG"}
    proc = subprocess.run([sys.executable, "-I", "-c", system + "from plugin.frontends.exec_cli "
                           "import run; run()", "setup", *POD], capture_output=True, text=True,
                          env=environment, timeout=60, cwd=tmp_path)
    assert proc.returncode == 3 and f"config {link}: cannot be read" in proc.stdout + proc.stderr
    proc = subprocess.run([sys.executable, "-I", "-c", system + "from plugin.frontends.cni.main "
                           "import main; sys.exit(main())"], input=json.dumps(NETCONF),
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**environment, **CNI_ENV})
    error = json.loads(proc.stdout)
    assert error["code"] == 7 and f"config {link}: cannot be read" in error["msg"], error
    assert not (tmp_path / "state").exists()


def test_docker_silent_and_a_process_namespace_is_try_again_later(tmp_path, node):
    """/proc/<pid>/ns/net may be a Docker container's: with Docker not answering, ADD cannot
    tell which plumber serves it, so it asks the runtime to try again (11), creating nothing."""
    node.write_text(yaml.safe_dump({**yaml.safe_load(node.read_text()),
                                    "docker_url": f"unix://{tmp_path}/no-docker.sock"}))
    holder = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        wait_until(lambda: os.stat(f"/proc/{holder.pid}/ns/net").st_ino
                   != os.stat("/proc/self/ns/net").st_ino, timeout=10)
        status, error = cni(tmp_path, node, {**CNI_ENV, "CNI_NETNS": f"/proc/{holder.pid}/ns/net"},
                            json.dumps(NETCONF).encode())
    finally:
        holder.kill()
        holder.wait()
    assert status == 1 and error["code"] == 11, error
    assert "Docker does not answer" in error["msg"] and "no-docker.sock" in error["msg"], error
    nothing_created(tmp_path)


def test_a_container_id_of_any_length_the_spec_allows_is_not_an_input_error(tmp_path, node):
    """300 characters (ENAMETOOLONG as a file name): it gets past validation, to the
    namespace, which here is the caller's own and refused."""
    status, error = cni(tmp_path, node, {**CNI_ENV, "CNI_CONTAINERID": "x" * 300,
                                         "CNI_NETNS": "/proc/self/ns/net"},
                        json.dumps(NETCONF).encode())
    assert status == 1 and error["code"] == 4 and "CNI_CONTAINERID" not in error["msg"]
    assert "CNI_NETNS /proc/self/ns/net is the host's own network namespace" in error["msg"]
