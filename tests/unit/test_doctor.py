"""doctor tells the truth (issue 25, items 6-8), at the unit tier: no daemon answers here, so
the rows about Open vSwitch and Docker fail, and the rows under test are read on their own.

- 6: a symlinked state_dir, which setup and gc refuse, fails doctor too.
- 7: doctor judges the front-ends installed: a CNI-only node has no exec row to fail;
  `vlanpipe-cni doctor` is doctor.
- 8: each failed row's fix names the actual cause (the config, etcd), not the row's usual one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from plugin.config.schema import parse
from plugin.ops import doctor_install
from plugin.ops.doctor import run_checks


def config(tmp_path, **extra):
    return parse({"state_dir": str(tmp_path / "state"), "node_name": "n1",
                  "log": {"file": str(tmp_path / "log" / "vlanpipe.log")},
                  "docker_url": f"unix://{tmp_path}/no-docker.sock",
                  "timeouts": {"ovs": 2, "docker": 2}, **extra}, "test.yaml")


def rows(tmp_path, executable="vlanpipe", **extra) -> dict:
    return {c.name: c for c in run_checks(config(tmp_path, **extra), executable)}


@pytest.fixture
def frontends(tmp_path, monkeypatch):
    """doctor's exec and CNI folders, the test's own."""
    exec_dir, cni_dir = tmp_path / "exec", tmp_path / "cni-bin"
    exec_dir.mkdir()
    cni_dir.mkdir()
    monkeypatch.setattr(doctor_install, "EXEC_DIR", str(exec_dir))
    monkeypatch.setattr(doctor_install, "CNI_BIN_DIR", str(cni_dir))
    return exec_dir, cni_dir


def test_a_symlinked_state_dir_fails_doctor(tmp_path, frontends):
    real = tmp_path / "real"
    real.mkdir(mode=0o755)
    os.symlink(real, tmp_path / "state")
    state = rows(tmp_path)["state directory"]
    assert not state.ok and "is a symlink" in state.detail, state
    assert state.fix == "point state_dir at the real directory"


def test_a_cni_only_node_has_no_exec_row_to_fail(tmp_path, frontends):
    _, cni_dir = frontends
    cni = os.path.join(os.path.dirname(sys.executable), "vlanpipe-cni")
    os.symlink(cni, cni_dir / "vlanpipe")
    found = rows(tmp_path)
    assert found["cni install"].ok and cni in found["cni install"].detail
    assert not [name for name in found if "kubelet" in name or name == "front-ends"]


def test_a_node_with_no_front_end_fails_and_one_with_an_exec_install_is_judged(tmp_path,
                                                                              frontends):
    exec_dir, cni_dir = frontends
    none = rows(tmp_path)["front-ends"]
    assert not none.ok and "no front-end installed" in none.detail
    assert "vlanpipe install" in none.fix and "vlanpipe-cni" in none.fix
    subprocess.run([sys.executable, "-m", "plugin.frontends.exec_cli", "install", "--dir",
                    str(exec_dir), "--name", "myplugin"], check=True, capture_output=True)
    os.symlink(tmp_path / "nowhere", cni_dir / "vlanpipe")
    found = rows(tmp_path)
    assert found["kubelet install myplugin"].ok and "front-ends" not in found
    assert "--network-plugin=myplugin" in found["kubelet install myplugin"].detail
    assert not found["cni install"].ok and "dangling" in found["cni install"].detail


def test_vlanpipe_cni_doctor_is_doctor(tmp_path, frontends):
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"state_dir": str(tmp_path / "state"),
                                "log": {"file": str(tmp_path / "vlanpipe.log")},
                                "docker_url": f"unix://{tmp_path}/no-docker.sock"}))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "vlanpipe-cni"),
                           "--config", str(path), "doctor", "--json"], capture_output=True,
                          text=True, timeout=60, env=environment)
    checks = json.loads(proc.stdout)
    assert proc.returncode == 1 and {"config", "pipework", "pods"} <= {c["name"] for c in checks}
    assert proc.stderr.startswith("vlanpipe-cni: doctor: ")


def test_an_etcd_network_without_an_etcd_section_fails_config_not_macs(tmp_path, frontends):
    found = rows(tmp_path, networks=[{"name": "pods", "subnet": "10.22.0.0/24",
                                      "allocator": "etcd"}])
    assert not found["config"].ok and "no etcd section" in found["config"].detail
    for name in ("config", "allocators"):
        assert found[name].fix == "add etcd.endpoints to the config", found[name]
    assert found["macs"].ok  # it reads this node's records, not the allocators


def test_etcd_down_is_named_as_the_cause(tmp_path, frontends):
    found = rows(tmp_path, etcd={"endpoints": ["http://127.0.0.1:9"], "timeout": 1},
                 networks=[{"name": "pods", "subnet": "10.22.0.0/24", "allocator": "etcd"}])
    assert found["config"].ok
    assert not found["allocators"].ok and "etcd unreachable" in found["allocators"].detail
    assert "check that etcd runs" in found["allocators"].fix
    assert found["macs"].ok  # this node's records: no etcd, no IPv6 hint to mislead
