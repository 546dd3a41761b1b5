"""A real container runtime calling CNI, for tests: containerd (Docker's own, 1.6) via ``ctr``.

Plain functions and classes, no pytest. Two ways in:

* ``ctr run --rm --cni``, in the foreground (:func:`start_cni_run`): containerd's
  go-cni loads the first conflist of ``/etc/cni/net.d`` and runs plugins from
  ``/opt/cni/bin``. No flag changes those folders, so ctr runs inside a private
  mount namespace where the test's own folders are bind-mounted over them
  (:class:`CniDirs`); the host's ``/etc`` and ``/opt`` are never written. Order
  inside ctr: task created (process exists, not started) -> CNI ADD with
  ``CNI_NETNS=/proc/<pid>/ns/net`` -> task started (RUNNING) -> ... task exits ->
  CNI DEL with an *empty* ``CNI_NETNS`` -> task and container (and its snapshot)
  deleted. A detached ``ctr run -d --cni`` never gets a DEL, hence foreground.
  End it with :meth:`ForegroundRun.stop` (``ctr task kill -s SIGKILL``): signals
  sent to the ctr process itself are forwarded to the task, and ``sleep`` as PID 1
  ignores SIGTERM/SIGINT; SIGKILL to ctr kills ctr without any DEL.
  Config versions: 0.3.1, 0.4.0, 1.0.0 work (prevResult on DEL from 0.4.0). A 1.1.0
  conflist does not: a 1.1.0 ADD result fails the run (ctr then sends DEL and leaves
  the task CREATED and the container behind: stop() removes them); a 1.0.0 result
  runs, but the DEL is never sent (libcni cannot convert the cached result).
* The CRI order by hand (:func:`add_netns`, :func:`run_in_netns`): a named
  namespace ``/var/run/netns/cni-<uuid>`` first, the test's CNI ADD into it while
  no process is in it, then ``ctr run -d --with-ns network:PATH`` joins it.

Everything made here is recorded in a registry (:data:`REGISTRY`) so that
:func:`cleanup` removes it and :func:`leftovers` / :func:`state` + :func:`diff`
find leaks. Containers carry the label ``vlanpipe-test=1``.

The parts, one concern each: ``ctr`` (the command and the test image), ``tasks``
(containers, tasks and the registry), ``cni_run`` (the foreground ``ctr run --cni``),
``cri`` (the CRI order by hand) and ``leaks`` (states, leftovers, cleanup, preflight).
Tests import this package (``from tests.support import containerd as C``).
"""

from __future__ import annotations

from tests.support.containerd.cni_run import (CNI_BIN_DIR, CNI_CACHE_DIR, CNI_CONF_DIR,
                                              DEBIAN_CNI_DIR, CniDirs, ForegroundRun,
                                              RunFailed, make_cni_dirs, start_cni_run)
from tests.support.containerd.cri import (NetNS, Task, add_netns, delete_netns, ns_inode,
                                          random_container_id, run_in_netns)
from tests.support.containerd.ctr import (ADDRESS, DOCKER_IMAGE, LABEL, LABEL_KEY,
                                          LABEL_VALUE, NAMESPACE, ctr, ctr_argv, image_ref,
                                          images, import_image, remove_image)
from tests.support.containerd.leaks import (State, cleanup, diff, leftovers, preflight,
                                            purge_namespace, state, sweep)
from tests.support.containerd.tasks import (REGISTRY, Registry, active_snapshots, containers,
                                            exec_in, new_name, nsenter_net, pid_alive,
                                            remove_container, shim_pids, task_pid, tasks)

__all__ = ["ADDRESS", "CNI_BIN_DIR", "CNI_CACHE_DIR", "CNI_CONF_DIR", "DEBIAN_CNI_DIR",
           "DOCKER_IMAGE", "LABEL", "LABEL_KEY", "LABEL_VALUE", "NAMESPACE", "REGISTRY",
           "CniDirs", "ForegroundRun", "NetNS", "Registry", "RunFailed", "State", "Task",
           "active_snapshots", "add_netns", "cleanup", "containers", "ctr", "ctr_argv",
           "delete_netns", "diff", "exec_in", "image_ref", "images", "import_image",
           "leftovers", "make_cni_dirs", "new_name", "ns_inode", "nsenter_net", "pid_alive",
           "preflight", "purge_namespace", "random_container_id", "remove_container",
           "remove_image", "run_in_netns", "shim_pids", "start_cni_run", "state", "sweep",
           "task_pid", "tasks"]
