"""The benchmark: the plugin against bare pipework, ovs-docker and the floor.

Run it with `scripts/bench` (or `.venv/bin/python -m bench [--quick]`). It
needs the real daemons of the e2e tests (Open vSwitch userspace datapath,
dockerd, pipework) and root; it reports, it never asserts: speed on a shared
2-core machine is too noisy for a pass/fail test.
"""
