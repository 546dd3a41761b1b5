"""``ctr`` against Docker's own containerd, and the test image in it."""

from __future__ import annotations

import json
import subprocess

from tests.support.hostnet import CommandError, run

ADDRESS = "/var/run/docker/containerd/containerd.sock"
NAMESPACE = "vlanpipe-test"
DOCKER_IMAGE = "vlanpipe/busybox:latest"
LABEL_KEY, LABEL_VALUE = "vlanpipe-test", "1"
LABEL = f"{LABEL_KEY}={LABEL_VALUE}"


def ctr_argv(*args: str, namespace: str = NAMESPACE) -> list[str]:
    return ["ctr", "--address", ADDRESS, "-n", namespace, *args]


def ctr(*args: str, namespace: str = NAMESPACE, check: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``ctr --address ADDRESS -n NAMESPACE ARGS`` (stdin /dev/null, output captured)."""
    return run(ctr_argv(*args, namespace=namespace), check=check, timeout=timeout)


def not_found(proc: subprocess.CompletedProcess[str]) -> bool:
    text = (proc.stderr + proc.stdout).lower()
    return "not found" in text or "no such" in text


def image_ref(docker_image: str = DOCKER_IMAGE) -> str:
    """The reference containerd gives a ``docker save``d image on import (Docker's
    normalisation): ``vlanpipe/busybox:latest`` -> ``docker.io/vlanpipe/busybox:latest``,
    ``busybox`` -> ``docker.io/library/busybox:latest``."""
    name, tag = docker_image, ""
    if "@" not in name and ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    return f"{name}:{tag or 'latest'}" if "@" not in name else name


def _docker_image_id(docker_image: str) -> str:
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", docker_image]).stdout.strip()


def _containerd_config_digest(ref: str, namespace: str) -> str | None:
    """Config digest of ``ref`` in containerd (== Docker's image id), None if absent."""
    for line in ctr("images", "ls", namespace=namespace).stdout.splitlines()[1:]:
        words = line.split()
        if len(words) >= 3 and words[0] == ref:
            manifest = json.loads(ctr("content", "get", words[2], namespace=namespace).stdout)
            return manifest.get("config", {}).get("digest")
    return None


def import_image(docker_image: str = DOCKER_IMAGE, namespace: str = NAMESPACE) -> str:
    """Make ``docker_image`` available in ``namespace`` (``docker save | ctr image import -``,
    which also unpacks it into the overlayfs snapshotter); return containerd's reference.

    Idempotent: nothing is done if containerd already holds the same image (same
    config digest as Docker's image id); a rebuilt Docker image is imported again.
    """
    ref = image_ref(docker_image)
    if _containerd_config_digest(ref, namespace) == _docker_image_id(docker_image):
        return ref
    save = subprocess.Popen(["docker", "save", docker_image], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        imp = subprocess.run(ctr_argv("images", "import", "-", namespace=namespace),
                             stdin=save.stdout, capture_output=True, text=True, timeout=300)
    finally:
        assert save.stdout is not None
        save.stdout.close()
        save_err = save.stderr.read().decode() if save.stderr else ""
        save.wait(timeout=60)
    if save.returncode != 0 or imp.returncode != 0:
        raise RuntimeError(f"docker save {docker_image} | ctr image import failed: "
                           f"{save_err.strip()} {imp.stderr.strip()} {imp.stdout.strip()}")
    if _containerd_config_digest(ref, namespace) is None:
        raise RuntimeError(f"after import, containerd does not list {ref}: {imp.stdout.strip()}")
    return ref


def remove_image(ref: str, namespace: str = NAMESPACE) -> None:
    """``ctr images rm`` (content and the committed snapshot are garbage-collected)."""
    proc = ctr("images", "rm", "--sync", ref, namespace=namespace, check=False)
    if proc.returncode != 0 and not not_found(proc):
        raise CommandError(proc)


def images(namespace: str = NAMESPACE) -> set[str]:
    return set(ctr("images", "ls", "-q", namespace=namespace).stdout.split())
