"""A pod interface's transmit checksum offload, read and set through the ethtool ioctl.

Why it matters: a veth leaves TCP and UDP checksums to "hardware" it does not
have, and finishes them only if the frame reaches another kernel stack. Open
vSwitch's userspace datapath (`datapath_type=netdev`) reads the pod's frames
from the host end through a packet socket and forwards them as they are, so the
receiving pod sees a bad checksum and drops every segment; ARP and ICMP carry
no offloaded checksum and pass. With transmit checksumming off on the pod's
interface, the pod's kernel writes the checksum itself (and drops TSO, which
needs it), and every frame leaves complete. `ethtool -K IF tx off` does the
same from a process, with a binary the nodes may lack.
"""

from __future__ import annotations

import array
import fcntl
import socket
import struct

from pipework_wrapper.inside import inside
from pipework_wrapper.timing import timed

SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM, ETHTOOL_STXCSUM = 0x16, 0x17


def tx_checksum(netns: str, ifname: str, timeout: float = 5.0) -> bool:
    """Whether `ifname` in the namespace at `netns` leaves checksums to transmit offload."""
    with timed("ethtool"):
        return inside(netns, lambda: _value(ifname, ETHTOOL_GTXCSUM),
                      f"read the transmit checksum offload of {ifname}", timeout) != 0


def set_tx_checksum(netns: str, ifname: str, on: bool, timeout: float = 5.0) -> bool:
    """Turn transmit checksum offload of `ifname` on or off; return the state read back
    (a driver may refuse the change silently)."""
    def change() -> int:
        _value(ifname, ETHTOOL_STXCSUM, int(on))
        return _value(ifname, ETHTOOL_GTXCSUM)

    with timed("ethtool"):
        return inside(netns, change, f"set the transmit checksum offload of {ifname}",
                      timeout) != 0


def _value(ifname: str, command: int, data: int = 0) -> int:
    """One `struct ethtool_value` ioctl on a socket made in the current thread's
    namespace (the ioctl names a link of the socket's namespace)."""
    value = array.array("B", struct.pack("II", command, data))
    request = struct.pack("16sP", ifname.encode(), value.buffer_info()[0])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, request)
    return struct.unpack("II", value.tobytes())[1]
