"""The mapping from the plugin's errors to CNI error codes and the error document."""

import pytest

from plugin.frontends.cni.errors import CniError, code_for, document
from plugin.errors import (AllocationError, BackendError, ConfigError, ContainerError,
                           InputError, Failure)


@pytest.mark.parametrize("error,code", [
    (ConfigError("x"), 7), (InputError("x"), 4), (ContainerError("x"), 3),
    (BackendError("x"), 1001), (AllocationError("x"), 1002), (Failure("x"), 1000),
    (CniError(11, "x"), 11)])
def test_codes(error, code):
    assert code_for(error) == code


def test_document_has_exactly_the_spec_keys_on_single_lines():
    body = document(BackendError("ovs-vsctl\nfailed", "start\n  it"), "0.4.0")
    assert body == {"cniVersion": "0.4.0", "code": 1001, "msg": "ovs-vsctl failed",
                    "details": "start it"}
