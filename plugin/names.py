"""What a valid name or number from outside is, and the names the plugin derives.

The plugin runs as root and passes these values to pipework, ovs-vsctl and ip,
and uses some in file names. Each rule is written here once and checked before
anything is created, so a hostile or mistaken value fails early and cleanly.

`status` checks its three arguments here on every pod sync, so the rules are sets of
ASCII characters, not regular expressions: importing `re` (and the `enum` it pulls in)
cost that call about 3 ms, a third of the interpreter's own start (issue 23).
"""

from __future__ import annotations

from plugin.errors import InputError, shown

try:  # the interpreter's built-in SHA-256: hashlib would load OpenSSL, ~2 ms per status call
    from _sha2 import sha256 as _sha256  # Python 3.12 and later
except ImportError:
    try:
        from _sha256 import sha256 as _sha256  # Python 3.9 to 3.11
    except ImportError:  # an interpreter built without them
        from hashlib import sha256 as _sha256

_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ALNUM = frozenset(_LOWER + _LOWER.upper() + _DIGITS)
_LABEL = frozenset(_LOWER + _DIGITS + "-")  # DNS-1123: lowercase letters, digits, '-'
_HEX = frozenset(_DIGITS + "abcdef")
# Interface names, and the CNI spec's "plaintext" identifiers after their first character.
_WORD = frozenset(_ALNUM | set("_.-"))

VLAN_MIN, VLAN_MAX = 1, 4094


def namespace(value: str) -> str:
    """A namespace is a DNS-1123 label (at most 63 characters)."""
    if not isinstance(value, str) or not _label(value) or len(value) > 63:
        raise InputError(
            f"namespace {shown(value)} is not a valid Kubernetes namespace",
            "use lowercase letters, digits and '-', at most 63 characters",
        )
    return value


def pod(value: str) -> str:
    """A pod name is a DNS-1123 subdomain (at most 253 characters)."""
    if not isinstance(value, str) or len(value) > 253 or not all(
            _label(part) for part in value.split(".")):
        raise InputError(
            f"pod name {shown(value)} is not a valid Kubernetes pod name",
            "use lowercase letters, digits, '-' and '.', at most 253 characters",
        )
    return value


def is_docker_id(value: str) -> bool:
    """A full Docker container id: 64 hex digits (a CRI sandbox id has the same shape)."""
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def infra_id(value: str) -> str:
    """The kubelet passes the infra container's full 64-hex Docker id."""
    if not is_docker_id(value):
        raise InputError(
            f"infra container id {shown(value)} is not a 64-hex Docker container id",
            "pass the full id, as the kubelet does (docker inspect --format '{{.Id}}')",
        )
    return value


def _label(value: str) -> bool:
    """One DNS-1123 label of any length: lowercase letters, digits and '-', with a letter
    or digit at each end."""
    return value[:1] not in ("", "-") and value[-1] != "-" and set(value) <= _LABEL


def ifname(value: str) -> str:
    """A Linux interface name (bridges too): at most 15 characters, no '/' or spaces."""
    if not isinstance(value, str) or not 0 < len(value) <= 15 or not set(value) <= _WORD \
            or value in (".", ".."):
        raise InputError(
            f"interface name {shown(value)} is not a valid Linux interface name",
            "use at most 15 letters, digits, '_', '.' or '-'",
        )
    return value


def node(value: str) -> str:
    """A node's name: it goes into ownership marks and etcd keys (empty: the host name)."""
    if value and (len(value) > 253 or not plaintext(value)):
        raise InputError(f"node name {shown(value)} is not usable",
                         "use at most 253 letters, digits, '_', '.' or '-'")
    return value


def plaintext(value: str) -> bool:
    """The CNI spec's rule for identifiers: alphanumeric, then alphanumerics, '_', '.', '-'."""
    return isinstance(value, str) and value[:1] in _ALNUM and set(value) <= _WORD


def vlan(value: object) -> int:
    """A VLAN tag, given as an integer or ASCII digits: 0 means untagged, 4095 is reserved.

    ValueError says why not; each caller names the input in its own error type.
    """
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not VLAN_MIN <= value <= VLAN_MAX:
        raise ValueError(f"must be a VLAN id between {VLAN_MIN} and {VLAN_MAX}")
    return value


def state_key(container_id: str) -> str:
    """The name of a container's files (records, lock): a hash, so an id of any length
    the CNI spec allows gives a short name that cannot leave its directory."""
    return _sha256(container_id.encode()).hexdigest()[:40]


def host_veth(infra: str, interface: str) -> str:
    """The host end of the pod's veth, derived from the container, never from its PID.

    pipework's default name (`v<IF>pl<PID>`) collides when a PID is reused and
    its 2014 copy matches it as a substring of other port names; a name hashed
    from (infra id, interface) is stable across retries of the same container,
    unique between containers, and computable at teardown with no container.
    """
    import hashlib  # not at the top: `status` never names a veth (see the module's doc)

    digest = hashlib.sha1(f"{infra}/{interface}".encode()).hexdigest()
    return f"vp{digest[:12]}"
