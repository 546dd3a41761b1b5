"""Config loading and validation: every bad file is one clear ConfigError."""

import os

import pytest

from plugin.config import schema as cfg
from plugin.errors import ConfigError


def write(tmp_path, text, mode=0o644):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def primary(config):
    return next(a for a in config.attachments if a.primary)


def test_defaults_match_the_reference_plugin():
    config = cfg.load(None)
    assert config.bridge == "k8s_br"
    assert primary(config).interface == "eth1" and primary(config).bridge == "k8s_br"
    assert primary(config).vlan.kind == "pod-name-prefix"
    assert config.status_report == "docker"


def test_shipped_config_yaml_loads_and_equals_the_defaults():
    shipped = cfg.load(os.path.join(os.path.dirname(__file__), "..", "..", "config.yaml"))
    defaults = cfg.load(None)
    for field in ("bridge", "datapath_type", "attachments", "networks", "status_report",
                  "log_file", "state_dir", "pipework"):
        assert getattr(shipped, field) == getattr(defaults, field), field


@pytest.mark.parametrize("text,needle", [
    ("bridge: [a]\n", "key 'bridge'"),
    ("bridge: 'has space'\n", "key 'bridge'"),
    ("bridgee: k8s_br\n", "unknown key 'bridgee'"),
    ("vlan: {rule: magic}\n", "key 'vlan.rule'"),
    ("vlan: {rule: regex, pattern: '(\\d+)'}\n", "named group"),
    ("vlan: {rule: regex, pattern: '(?P<vlan>'}\n", "not a regular expression"),
    ("vlan: {rule: fixed, tag: 4095}\n", "key 'vlan.tag'"),
    ("vlan: {rule: fixed}\n", "'vlan.tag' is required"),
    ("vlan: {rule: namespace-map, namespaces: {a: 0}}\n", "vlan.namespaces.a"),
    ("timeouts: {ovs: -1}\n", "timeouts.ovs"),
    ("timeouts: {ovs: yes}\n", "timeouts.ovs"),
    ("status: {report: always}\n", "status.report"),
    ("interface: 'eth 1'\n", "key 'interface'"),
    ("bridge: k8s_br\n  bad: indent\n", "not valid YAML at line 2"),
    ("- a list\n", "must be a mapping"),
    ("attachments: [{interface: eth1}, {interface: eth2}]\n", "exactly one"),
    ("attachments: [{interface: eth1, primary: true, colour: red}]\n", "attachments[0].colour"),
])
def test_bad_config_names_file_key_and_value(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        cfg.load(path)
    assert needle in err.value.line() and path in err.value.line()
    assert "\n" not in err.value.line()


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        cfg.load(str(tmp_path / "absent.yaml"))


def test_world_writable_config_is_refused(tmp_path):
    path = write(tmp_path, "bridge: k8s_br\n", 0o666)
    with pytest.raises(ConfigError, match="writable by everyone"):
        cfg.load(path)


def test_search_order(tmp_path, monkeypatch):
    beside = write(tmp_path, "bridge: beside\n")
    exe = str(tmp_path / "myplugin")
    monkeypatch.delenv(cfg.ENV_VAR, raising=False)
    monkeypatch.setattr(cfg, "SYSTEM_PATH", str(tmp_path / "none.yaml"))
    assert cfg.find(None, exe) == beside
    monkeypatch.setenv(cfg.ENV_VAR, "/from/env.yaml")
    assert cfg.find(None, exe) == "/from/env.yaml"
    assert cfg.find("/explicit.yaml", exe) == "/explicit.yaml"


def test_attachments_give_several_interfaces():
    config = cfg.parse({"attachments": [
        {"interface": "eth1", "primary": True},
        {"interface": "eth2", "bridge": "br_b", "vlan": {"rule": "fixed", "tag": 30}},
    ]}, "test")
    assert [a.interface for a in config.attachments] == ["eth1", "eth2"]
    assert config.attachments[1].bridge == "br_b" and config.attachments[1].vlan.tag == 30
    assert primary(config).interface == "eth1" and config.attachments[0].bridge == "k8s_br"
