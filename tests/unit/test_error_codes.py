"""Each front-end's one table from error class to code, class by class. Both tables are
first-match, and several classes are subclasses of others with a code of their own (NotReady
is a BackendError, AddressRefused an AllocationError), so a reordered or shortened table
changes codes silently: every class the plugin raises is pinned here, in both tables."""

from __future__ import annotations

import pytest

from plugin import errors
from plugin.frontends.cni.errors import code_for
from plugin.frontends.exec_cli import exit_code

# Class -> (exec exit status: README "two commands"; CNI code: README "Error codes").
CODES = {
    errors.Failure: (1, 1000),
    errors.UsageError: (2, 1000),
    errors.ConfigError: (3, 7),
    errors.InputError: (4, 4),
    errors.ContainerError: (5, 3),
    errors.ContainerNotFound: (5, 3),      # Docker does not know CNI_CONTAINERID
    errors.DockerUnavailable: (5, 11),     # try again later
    errors.BackendError: (6, 1001),
    errors.ToolFailed: (6, 1001),
    errors.NotReady: (6, 11),              # a BackendError: the bridge is not there yet
    errors.EtcdError: (8, 1001),           # a BackendError with an exit status of its own
    errors.LockTimeout: (9, 1001),         # likewise
    errors.NeedsRoot: (10, 1000),          # an operator command run as another user
    errors.AllocationError: (7, 1002),
    errors.AddressRefused: (7, 7),         # an AllocationError: invalid config, not a shortage
    errors.AddressConflict: (7, 1005),     # another host answered the conflict probe
}


def test_every_error_class_is_pinned():
    exported = (getattr(errors, name) for name in errors.__all__)
    assert {kind for kind in exported if isinstance(kind, type)} == set(CODES)


@pytest.mark.parametrize("kind", list(CODES), ids=lambda kind: kind.__name__)
def test_exec_exit_status(kind):
    assert exit_code(kind("x")) == CODES[kind][0]


@pytest.mark.parametrize("kind", list(CODES), ids=lambda kind: kind.__name__)
def test_cni_code(kind):
    assert code_for(kind("x")) == CODES[kind][1]
