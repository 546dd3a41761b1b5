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
           "node=node, cni_network=self.cni_network,", "node=node,",
           "issue 26 item 3 (core side): the port does not carry its CNI network"),
    Mutant("vlan-upper-bound-off-by-one", "core", "plugin/names.py",
           "not VLAN_MIN <= value <= VLAN_MAX", "not VLAN_MIN <= value < VLAN_MAX",
           "an off-by-one VLAN bound: 4094 refused"),
    Mutant("stale-port-not-cleared", "core", "plugin/core/ports.py",
           "        if stale or self.ip.link_exists(port):\n",
           "        if self.ip.link_exists(port):\n",
           "a port a killed attempt left (no veth) keeps its stale tag: pipework skips add-port"),
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
           "depth += count > 4 * size", "depth += 0",
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
    # --- the CNI front-end -------------------------------------------------------------------
    Mutant("cni-want-without-network", "cni", "plugin/frontends/cni/attach.py",
           "mtu=conf.mtu,\n                   cni_network=conf.name)", "mtu=conf.mtu)",
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
)
