"""Spec versions: which are spoken, what each allows, what a delegate is spoken to in."""

import pytest

from plugin.frontends.cni import versions
from plugin.frontends.cni.errors import CniError


@pytest.mark.parametrize("version", versions.SUPPORTED)
def test_add_and_del_are_allowed_in_every_supported_version(version):
    versions.require("ADD", version)
    versions.require("DEL", version)


@pytest.mark.parametrize("command,version", [
    ("ADD", "0.2.0"), ("ADD", "1.2.0"), ("ADD", "x"), ("CHECK", "0.3.1"),
    ("STATUS", "1.0.0"), ("GC", "0.4.0"), ("GC", "1.0.0"), ("ADD", "9.9.9"), ("ADD", "0.3.0"),
    ("ADD", "one")])
def test_refused_with_code_1(command, version):
    with pytest.raises(CniError) as err:
        versions.require(command, version)
    assert err.value.code == 1


def test_version_report_echoes_the_question_or_answers_for_the_newest():
    assert versions.report(b'{"cniVersion": "0.4.0"}')["cniVersion"] == "0.4.0"
    for stdin in (b"", b"{", b"[]", b'{"cniVersion": 4}'):
        assert versions.report(stdin) == {"cniVersion": "1.1.0",
                                          "supportedVersions": list(versions.SUPPORTED)}


@pytest.mark.parametrize("requested,theirs,chosen", [
    ("1.0.0", ["0.3.1", "1.0.0"], "1.0.0"),
    ("1.1.0", ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"], "1.0.0"),
    ("0.3.1", ["1.0.0", "1.1.0"], "1.0.0"),
    ("0.4.0", ["0.1.0", "0.2.0"], None),
    ("1.0.0", ["junk", 3, "0.3.1"], "0.3.1"),
    ("1.0.0", [], None),
])
def test_negotiate_with_a_delegated_plugin(requested, theirs, chosen):
    assert versions.negotiate(requested, theirs) == chosen


def test_ip_family_field_only_before_1_0():
    assert versions.has_ip_version("0.4.0") and not versions.has_ip_version("1.0.0")
