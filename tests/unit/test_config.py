"""Config loading and validation: every bad file is one clear ConfigError."""

import os

import pytest

from plugin.config import files
from plugin.config import loader as cfg
from plugin.config.schema import parse
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
    ("timeouts: {ovs: soon}\n", "timeouts.ovs"),
    ("bridge: k8s_br\nflavour: mint\n", "unknown key 'flavour'"),
    ("bridge: [unclosed\n", "not valid YAML"),
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


@pytest.mark.parametrize("mode", [0o666, 0o664, 0o646])
def test_a_config_others_can_write_is_refused(tmp_path, mode):
    path = write(tmp_path, "bridge: k8s_br\n", mode)
    with pytest.raises(ConfigError, match="writable by users other than its owner; run chmod"):
        cfg.load(path)


def test_a_config_owned_by_another_user_is_refused(tmp_path):
    """uid 1000 could otherwise choose `pipework:`, the binary root runs."""
    path = write(tmp_path, "pipework: /home/user/evil\n", 0o644)
    os.chown(path, 1000, 1000)
    with pytest.raises(ConfigError, match=f"config {path} belongs to uid 1000, not to uid 0"):
        cfg.load(path)


def test_a_config_in_a_folder_others_can_write_is_refused(tmp_path):
    folder = tmp_path / "etc"
    folder.mkdir()
    path = write(folder, "bridge: k8s_br\n")
    folder.chmod(0o777)
    with pytest.raises(ConfigError, match="config directory .* writable by users other"):
        cfg.load(path)


def test_the_state_directory_must_be_a_private_real_directory(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    files.check_private_dir(str(state), "state_dir")
    files.check_private_dir(str(tmp_path / "absent"), "state_dir")  # made later, 0700
    link = tmp_path / "link"
    link.symlink_to(state)
    with pytest.raises(ConfigError, match="state_dir .*/link is a symlink"):
        files.check_private_dir(str(link), "state_dir")
    os.chown(state, 1000, 1000)
    with pytest.raises(ConfigError, match="belongs to uid 1000"):
        files.check_private_dir(str(state), "state_dir")
    os.chown(state, 0, 0)
    state.chmod(0o770)
    with pytest.raises(ConfigError, match="writable by users other than its owner"):
        files.check_private_dir(str(state), "state_dir")


def test_search_order(tmp_path, monkeypatch):
    beside = write(tmp_path, "bridge: beside\n")
    exe = str(tmp_path / "myplugin")
    monkeypatch.delenv(files.ENV_VAR, raising=False)
    monkeypatch.setattr(files, "SYSTEM_PATH", str(tmp_path / "none.yaml"))
    assert files.find(None, exe) == beside
    monkeypatch.setenv(files.ENV_VAR, "/from/env.yaml")
    assert files.find(None, exe) == "/from/env.yaml"
    assert files.find("/explicit.yaml", exe) == "/explicit.yaml"


@pytest.mark.parametrize("where", ["system", "beside"])
@pytest.mark.parametrize("target", ["missing", "loop", "directory"])
def test_a_config_link_that_cannot_be_read_is_an_error_naming_it(tmp_path, monkeypatch, where,
                                                                target):
    """A link in the search order is the operator's config: never a silent fall back to
    the next place or to the built-in defaults (cni.vlans: all where the file allowed one)."""
    monkeypatch.delenv(files.ENV_VAR, raising=False)
    (tmp_path / "etc").mkdir()
    (tmp_path / "bin").mkdir()
    monkeypatch.setattr(files, "SYSTEM_PATH", str(tmp_path / "etc" / "config.yaml"))
    exe = str(tmp_path / "bin" / "myplugin")
    link = tmp_path / ("etc" if where == "system" else "bin") / "config.yaml"
    pointed = {"missing": tmp_path / "gone.yaml", "loop": link, "directory": tmp_path}[target]
    link.symlink_to(pointed)
    assert files.find(None, exe) == str(link)
    with pytest.raises(ConfigError) as err:
        cfg.load(files.find(None, exe))
    assert err.value.message.startswith(f"config {link}: cannot be read")
    assert f"a symlink to {pointed}" in err.value.message


def test_the_bridge_mtu_and_the_mtus_a_network_may_ask_for():
    """init fixes each bridge's own MTU (bridge_mtu); cni.mtu bounds a network config's."""
    config = parse({}, "test")
    assert (config.bridge_mtu, config.cni.mtus) == (1500, (1280, 9000))
    config = parse({"bridge_mtu": 9000, "cni": {"mtu": {"min": 576, "max": 9000}}}, "test")
    assert (config.bridge_mtu, config.cni.mtus) == (9000, (576, 9000))
    assert config.cni.allows_mtu(576) and not config.cni.allows_mtu(575)


def test_attachments_give_several_interfaces():
    config = parse({"attachments": [
        {"interface": "eth1", "primary": True},
        {"interface": "eth2", "bridge": "br_b", "vlan": {"rule": "fixed", "tag": 30}},
    ]}, "test")
    assert [a.interface for a in config.attachments] == ["eth1", "eth2"]
    assert config.attachments[1].bridge == "br_b" and config.attachments[1].vlan.tag == 30
    assert primary(config).interface == "eth1" and config.attachments[0].bridge == "k8s_br"
