"""Planted bugs: the kind of mistake this code could plausibly get, one exact replacement each.

Each `Mutant` replaces `old` (which must occur exactly once in `file`) with
`new`. `e2e` names end-to-end tests that catch it too, against the real daemons
(`scripts/mutants --e2e` runs them). When a change to the code makes
an `old` text stale, the runner says so: rewrite that entry against the new
code rather than dropping it. Add a mutant for every bug the tests once missed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    area: str   # core, ipam, gc, cni, exec
    file: str
    old: str
    new: str
    why: str    # the bug it stands for
    e2e: tuple[str, ...] = ()


MUTANTS = (
    # --- bandwidth limits (issue 21 item 1) ----------------------------------------------
    Mutant("bandwidth-network-overrides-pod", "core", "plugin/policy/bandwidth.py",
           "ingress = self if self.ingress else default",
           "ingress = default if default.ingress else self",
           "issue 21 item 1: a network's default wins over the pod's own ingress limit"),
    Mutant("bandwidth-max-unchecked", "core", "plugin/core/bandwidth.py",
           "in limits.exceeding(config.bandwidth_max):", "in []:",
           "issue 21 item 1: a limit above bandwidth_max is applied instead of refused"),
    Mutant("bandwidth-directions-reversed", "core", "plugin/core/bandwidth.py",
           "    if not limits.ingress:\n        return None\n"
           "    return Qos(limits.ingress_rate, limits.ingress_burst,",
           "    if not limits.egress:\n        return None\n"
           "    return Qos(limits.egress_rate, limits.egress_burst,",
           "issue 21 item 1 (kube-ovn #795): the pod's egress limit shapes traffic towards it",
           ("tests/e2e/test_bandwidth.py::test_cni_limits_hold_each_in_its_own_direction",)),
    Mutant("bandwidth-qos-left-after-teardown", "core", "plugin/core/ports.py",
           "            if record.bandwidth.ingress:\n"
           "                self.limits.remove_qos(record)\n        return marked",
           "            pass\n        return marked",
           "issue 21 item 1: del-port leaves the port's QoS and Queue rows in OVSDB"),
    Mutant("bandwidth-meter-left-after-teardown", "core", "plugin/core/ports.py",
           "            if record.bandwidth.egress:\n                self.limits.remove_meter(record)",
           "            if False:\n                self.limits.remove_meter(record)",
           "issue 21 item 1: teardown leaves the port's meter (and its rule) on the bridge",
           ("tests/e2e/test_bandwidth.py::test_cni_limits_hold_each_in_its_own_direction",)),
    # --- the core: attach, detach, rollback, marks --------------------------------------
    Mutant("partial-detach-by-network-mark", "core", "plugin/core/ports.py",
           'p.external_ids.get(marks.KEYS["interface"]) in only',
           'p.external_ids.get(marks.KEYS["network"]) in only',
           "issue 26 item 1: DEL/gc of some interfaces, records lost, select ports by the "
           "network mark"),
    Mutant("detach-ignores-only-if", "core", "plugin/core/attach.py",
           "if only_if is not None and not only_if():", "if False:",
           "issue 26 item 4: detach does not ask gc's check under the lock",
           ("tests/e2e/test_faults.py::test_gc_never_removes_a_pod_set_up_while_it_ran",)),
    Mutant("undo-oldest-first", "core", "plugin/core/attach.py",
           "for action in reversed(self.actions):", "for action in self.actions:",
           "rollback runs its steps in the order they were pushed"),
    Mutant("undo-stops-at-a-stuck-step", "core", "plugin/core/attach.py",
           "            except Exception as exc:  # keep undoing: one stuck step must not leak "
           "the rest\n                problems.append(str(exc))",
           "            except Exception as exc:  # keep undoing: one stuck step must not leak "
           "the rest\n                problems.append(str(exc))\n                break",
           "rollback gives up at the first undo step that fails"),
    Mutant("release-not-pushed-before-claim", "core", "plugin/core/attach.py",
           "        undo.push(lambda: self.allocators.release(owner, intent.network))\n", "",
           "a dropped undo step: a failed attach keeps its lease"),
    Mutant("intent-not-recorded", "core", "plugin/core/attach.py",
           "                self.records.save(ref.infra_id, others + intended)\n", "",
           "no record names the network before the claim (a kill leaks the lease)"),
    Mutant("pipework-veth-not-undone", "core", "plugin/core/ports.py",
           "        push(lambda: self.ip.delete_link(port))  # the pod's end goes with it\n", "",
           "a dropped undo step: a failed pipework leaves the veth"),
    Mutant("detach-keeps-records", "core", "plugin/core/attach.py",
           "kept = [r for r in records if r not in gone]", "kept = list(records)",
           "teardown leaves the records of what it removed"),
    Mutant("marks-without-cni-network", "core", "plugin/core/records.py",
           "network=self.network, cni_network=self.cni_network,", "network=self.network,",
           "issue 26 item 3 (core side): the port does not carry its CNI network"),
    Mutant("vlan-upper-bound-off-by-one", "core", "plugin/names.py",
           "not VLAN_MIN <= value <= VLAN_MAX", "not VLAN_MIN <= value < VLAN_MAX",
           "an off-by-one VLAN bound: 4094 refused"),
    Mutant("stale-port-not-cleared", "core", "plugin/core/ports.py",
           "        if earlier is not None or self.ip.link_exists(port):\n",
           "        if self.ip.link_exists(port):\n",
           "a port a killed attempt left (no veth) keeps its stale tag: pipework skips add-port"),
    Mutant("guard-after-the-pods-end", "core", "plugin/core/ports.py",
           "        self.guard.install(record, ofport)\n"
           "        self.plumbers()[sandbox.plumber].make(sandbox, record, leases, push)\n",
           "        self.plumbers()[sandbox.plumber].make(sandbox, record, leases, push)\n"
           "        self.guard.install(record, ofport)\n",
           "issue 20: the guard's rules come after the pod's end exists (a window to spoof)",
           ("tests/e2e/test_port_security.py::test_no_window_a_pod_sending_forged_frames_as_"
            "its_interface_appears",)),
    Mutant("teardown-keeps-rules", "core", "plugin/core/ports.py",
           "        self.guard.remove((where.get(name, \"\"), name) for name in {*ports, *leftovers})\n",
           "", "issue 20: teardown leaves the port's rules behind"),
    Mutant("old-rules-on-a-reused-number", "core", "plugin/core/guard.py",
           "        return first + rules if leftovers else rules",
           "        return rules",
           "issue 20: a new port given the number of a port whose rules leaked inherits them"),
    Mutant("tenant-turns-the-guard-off", "cni", "plugin/config/tenant.py",
           "if choice.port_security is not None and not policy.port_security_choice:",
           "if False:",
           "issue 20: a tenant's network config turns port security off unasked"),
    Mutant("records-delete-not-idempotent", "core", "plugin/core/records.py",
           "    def delete(self, infra_id: str) -> None:\n        try:\n"
           "            os.unlink(self.path(infra_id))\n        except FileNotFoundError:\n"
           "            pass\n",
           "    def delete(self, infra_id: str) -> None:\n"
           "        os.unlink(self.path(infra_id))\n",
           "issue 26 item 5 (core side): a second teardown/DEL crashes on the missing record"),
    # --- the allocator and its stores -----------------------------------------------------
    Mutant("etcd-claim-without-owner-compare", "ipam", "plugin/ipam/stores/etcd.py",
           "            checks = [unchanged(owner_key, held.revision) if held.revision\n"
           "                      else absent(owner_key)]",
           "            checks = []",
           "issue 26 item 2: two calls of one owner on different free addresses both win",
           ("tests/e2e/test_etcd_store.py::test_a_claim_after_another_call_for_the_same_owner_"
            "wrote_its_owner_key_is_raced",)),
    Mutant("etcd-release-without-address-compare", "ipam", "plugin/ipam/stores/etcd.py",
           "checks + [unchanged(address_key, entry.mod_revision)]", "checks",
           "release deletes an address record that changed behind its back",
           ("tests/e2e/test_etcd_store.py::test_a_record_changed_behind_our_back_is_not_deleted",)),
    Mutant("pooled-raced-is-a-miss", "ipam", "plugin/ipam/pooled.py",
           '            if claimed.outcome == "raced":\n                return None\n', "",
           "a raced claim is taken for a taken address: probing goes on with a stale owner"),
    Mutant("pooled-lookahead-ignored", "ipam", "plugin/ipam/pooled.py",
           "known_free.extend(free)", "known_free.clear()",
           "issue 23: a lost claim's look ahead is thrown away: a claim per taken address",
           ("tests/e2e/test_etcd_store.py::test_a_claim_in_a_pool_nine_tenths_full_costs_one_"
            "lost_claim_not_one_per_address",)),
    Mutant("etcd-lookahead-inverted", "ipam", "plugin/ipam/stores/etcd.py",
           "if not branch_entries(responses, index)", "if branch_entries(responses, index)",
           "issue 23: a lost claim reports the taken candidates as the free ones",
           ("tests/e2e/test_etcd_store.py::test_a_claim_in_a_pool_nine_tenths_full_costs_one_"
            "lost_claim_not_one_per_address",)),
    Mutant("etcd-pages-never-narrow", "ipam", "plugin/ipam/stores/etcd_client.py",
           "                if count > 4 * size:  # at once", "                if False:  # at once",
           "issue 23: every page a range to the end of the prefix: etcd counts O(n^2) keys"),
    Mutant("etcd-index-mark-ignored", "ipam", "plugin/ipam/stores/etcd_index.py",
           "        if self.etcd.get(self.mark) is not None:\n            return NodeLeases(records)",
           "        if False:\n            return NodeLeases(records)",
           "issue 23: gc --node reads every lease of every node though the network is indexed",
           ("tests/e2e/test_etcd_store.py::test_one_nodes_leases_are_read_through_the_index_not_"
            "every_record",)),
    Mutant("pooled-probes-off-by-one", "ipam", "plugin/ipam/pooled.py",
           "if misses == PROBES:", "if misses == PROBES + 1:",
           "the store is listed one probe late"),
    Mutant("rotation-restarts-at-the-same-address", "ipam", "plugin/ipam/pool.py",
           "start = int(last_reserved) + 1", "start = int(last_reserved)",
           "rotation hands the last reserved address out first again"),
    Mutant("file-store-release-keeps-the-address", "ipam", "plugin/ipam/stores/files.py",
           "            if held is not None:\n                remove(self._address_path("
           "held.address.ip))\n", "",
           "the node-local store's release drops the owner index and keeps the address"),
    Mutant("requested-address-range-not-checked", "ipam", "plugin/ipam/pool.py",
           "if in_range and not self.first <= number <= self.last:",
           "if in_range and not self.first <= number <= self.last + 1:",
           "a pod may ask for the address just past the range"),
    # --- gc ---------------------------------------------------------------------------------
    Mutant("gc-collects-whatever-the-check-says", "gc", "plugin/ops/gc.py",
           "only_if=lambda: verdict.append(found.check()) or verdict[-1])",
           "only_if=lambda: verdict.append(found.check()) or True)",
           "issue 26 item 4: gc's re-check under the pod lock is ignored",
           ("tests/e2e/test_faults.py::test_gc_never_removes_a_pod_set_up_while_it_ran",)),
    Mutant("gc-recheck-uses-the-listing", "gc", "plugin/ops/gc.py",
           "    return lambda: not liveness.alive_now(row.infra_id, row.plumber, row.netns, "
           "row.netns_id,\n                                          row.port)",
           "    return lambda: not liveness.alive(row.infra_id, row.plumber, row.netns, "
           "row.netns_id,\n                                      row.port)",
           "gc's re-check answers from the listing made before the lock, not Docker now"),
    Mutant("gc-without-docker-says-nothing", "gc", "plugin/ops/gc.py",
           "            done.append(Action(NOT_JUDGED, what, f\"{row.namespace}/{row.pod}\", "
           "unjudged))",
           "            pass",
           "gc without Docker succeeds silently, though it judged none of Docker's pods",
           ("tests/e2e/test_lifecycle.py::test_gc_without_docker_says_what_it_did_and_could_"
            "not_judge",)),
    Mutant("list-shows-other-nodes-ports", "gc", "plugin/ops/listing.py",
           "        if found.node != config.node_name:\n",
           "        if False:\n",
           "list (and so gc) takes another node's ports on a shared Open vSwitch as its own"),
    Mutant("gc-removes-fresh-half-written-files", "gc", "plugin/ops/gc.py",
           "time.time() - os.lstat(path).st_mtime <= older_than",
           "time.time() - os.lstat(path).st_mtime < -older_than",
           "gc removes a record being written right now"),
    Mutant("trunk-range-drops-its-last-vlan", "core", "plugin/policy/trunk.py",
           "return range(self.low, self.high + 1)", "return range(self.low, self.high)",
           "a trunk range's maxID is not carried",
           ("tests/e2e/test_trunk.py::test_listed_vlans_arrive_tagged_both_ways_and_untagged_"
            "frames_in_the_native_vlan",)),
    Mutant("trunk-change-not-judged", "core", "plugin/core/ports.py",
           "trunks.vlans(record.trunk) or record.trunk != want.trunk:",
           "trunks.vlans(record.trunk):",
           "CHECK and setup again miss a network whose trunk changed since ADD"),
    Mutant("native-addresses-accepted-tagged", "core", "plugin/core/flows.py",
           "found = [_within(rule, home) if rule.endswith(admit) else rule for rule in rules]",
           "found = list(rules)",
           "a trunk pod's own addresses are admitted on every VLAN it carries",
           ("tests/e2e/test_trunk.py::test_the_guard_holds_each_vlan_to_what_its_trunk_entry_"
            "lists",)),
    # --- the CNI front-end -------------------------------------------------------------------
    Mutant("cni-want-without-network", "cni", "plugin/frontends/cni/attach.py",
           "mtu=conf.mtu,\n                   cni_network=conf.name, ", "mtu=conf.mtu, ",
           "issue 26 item 3: ADD does not mark the port with its CNI network, GC never finds it",
           ("tests/e2e/test_cni.py::test_gc_removes_only_this_networks_stale_attachments",)),
    Mutant("cni-del-needs-the-sandbox", "cni", "plugin/frontends/cni/attach.py",
           "    delegate = call.delegate()\n    Core(call.config",
           "    _sandbox(call)\n    delegate = call.delegate()\n    Core(call.config",
           "issue 26 item 5: DEL fails when the namespace (or container) is gone",
           ("tests/e2e/test_cni.py::test_del_of_never_added_and_non_docker_ids_succeeds",
            "tests/e2e/test_cni.py::test_del_after_container_removed")),
    Mutant("cni-del-requires-netns", "cni", "plugin/frontends/cni/env.py",
           '"DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),',
           '"DEL": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),',
           "DEL refused without CNI_NETNS, which containerd sends empty"),
    Mutant("cni-gc-takes-valid-attachments", "cni", "plugin/frontends/cni/gc.py",
           "(owner.infra_id, owner.interface) not in valid",
           "(owner.infra_id, owner.interface) in valid",
           "GC removes the attachments the runtime still lists"),
    Mutant("cni-codes-reordered", "cni", "plugin/frontends/cni/errors.py",
           "    ((DockerUnavailable, NotReady), TRY_AGAIN_LATER),\n"
           "    ((ContainerError, ContainerNotFound), UNKNOWN_CONTAINER),\n"
           "    ((BackendError, ToolFailed), BACKEND),\n",
           "    ((BackendError, ToolFailed), BACKEND),\n"
           "    ((DockerUnavailable, NotReady), TRY_AGAIN_LATER),\n"
           "    ((ContainerError, ContainerNotFound), UNKNOWN_CONTAINER),\n",
           "issue 26 item 6: a missing bridge becomes 1001 instead of 11 (try again later)",
           ("tests/e2e/test_cni.py::test_add_to_a_missing_bridge_asks_to_try_again",)),
    Mutant("cni-address-refused-is-a-shortage", "cni", "plugin/frontends/cni/errors.py",
           "    ((ConfigError, AddressRefused), INVALID_CONFIG),\n",
           "    (ConfigError, INVALID_CONFIG),\n",
           "issue 26 item 6: an address outside the range is 1002 (no address left), not 7"),
    Mutant("exec-docker-down-is-generic", "exec", "plugin/frontends/exitcodes.py",
           "((ContainerError, ContainerNotFound, DockerUnavailable), 5,",
           "((ContainerError, ContainerNotFound), 5,",
           "issue 26 item 6 (exec table): Docker down exits 1 instead of 5"),
    # --- port security rules: reconcile and the sweep ----------------------------------------
    Mutant("restore-admits-before-the-guards", "core", "plugin/ops/reconcile.py",
           "    if rules.forward_line() in missing:\n        ofctl.bundle(bridge, "
           "[rules.forward_line()])",
           "    if missing:\n        ofctl.bundle(bridge, rules.bridge_lines())",
           "issue 20: after a restart the admission default goes in before the pods' rules, "
           "so a pod may spoof until its guard is back",
           ("tests/nodes/test_restart.py::test_no_forged_frame_crosses_a_restart_and_the_"
            "watcher_restores_traffic",)),
    Mutant("sweep-takes-the-bridges-own-rules", "gc", "plugin/core/rules.py",
           "if c != flows.BRIDGE and c not in live", "if c not in live",
           "issue 20: the sweep of gone ports' rules deletes the bridge's default rules, so "
           "the bridge forwards nothing"),
    # --- issue 21: the conflict probe and requested MACs ----------------------------------
    Mutant("probe-answer-ignored", "core", "plugin/core/conflicts.py",
           "    if found:\n        raise AddressConflict(",
           "    if False:\n        raise AddressConflict(",
           "issue 21: another host answers for the pod's address and setup succeeds",
           ("tests/e2e/test_conflict_probe.py::"
            "test_an_address_in_use_on_the_vlan_fails_add_and_is_never_handed_out_again",)),
    Mutant("arp-probe-with-the-address-as-sender", "core", "pipework_wrapper/probe.py",
           "1, mac, bytes(4), bytes(6),", "1, mac, address.packed, bytes(6),",
           "issue 21: the probe is a gratuitous ARP, which rewrites the other host's entry in "
           "every neighbour's cache before any conflict is known"),
    Mutant("conflicted-lease-released", "core", "plugin/core/attach.py",
           "                    self._keep_conflicted(ref, exc)",
           "                    pass",
           "issue 21: the rollback frees the address another host answered for: the next pod "
           "gets it again"),
    Mutant("conflicted-lease-counted-as-live", "ipam", "plugin/ipam/pooled.py",
           "for r in records if not r.conflict]", "for r in records]",
           "issue 21: a conflicted lease is a live one to gc, which frees it silently"),
    Mutant("universal-mac-accepted", "cni", "plugin/config/cnipolicy.py",
           "return self.universal_macs or bool(int(mac[:2], 16) & 2)",
           "return True",
           "issue 21: a pod takes a vendor's MAC without the node allowing it"),
)
