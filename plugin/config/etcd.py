"""The `etcd` section of the node config: where the cluster-wide allocator and the
pins live, read into `EtcdConfig` (`plugin.ipam.stores.etcd_config`).

Endpoints are checked to be bare http(s)://HOST:PORT (credentials in a URL would go
unused and show in logs) and TLS files to exist, so a typo fails at the config,
not at the first allocation.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

from plugin.config.reader import Section
from plugin.ipam.stores.etcd_config import EtcdConfig


def parse_etcd(section: Section) -> EtcdConfig | None:
    """The `etcd` section; None when it is absent or empty (no etcd in use)."""
    if not section.data:
        return None
    endpoints = tuple(_parse_endpoint(section, i, e)
                      for i, e in enumerate(section.typed("endpoints", list)))
    if not endpoints:
        raise section.error(section.key("endpoints"), [], "must list at least one endpoint")
    prefix = section.string("prefix", "/vlanpipe")
    if not re.fullmatch(r"(/[A-Za-z0-9_.-]+)+", prefix):
        raise section.error(section.key("prefix"), prefix,
                            'must look like "/vlanpipe": a leading "/", no trailing "/"')
    timeout = section.number("timeout", 5.0)
    if timeout > 300:
        raise section.error(section.key("timeout"), timeout, "must be at most 300 seconds")
    files = {key: _parse_file(section, key) for key in ("ca_cert", "cert", "key")}
    section.done()
    if (files["cert"] is None) != (files["key"] is None):
        raise section.error(section.key("cert"), files["cert"],
                            "and 'key' must be given together (client certificate and its key)")
    if any(files.values()) and not all(e.startswith("https:") for e in endpoints):
        raise section.error(section.key("endpoints"), list(endpoints),
                            "must all be https:// when TLS files are given")
    return EtcdConfig(endpoints=endpoints, prefix=prefix, timeout=timeout, **files)


def _parse_endpoint(s: Section, index: int, value: Any) -> str:
    key = f"{s.key('endpoints')}[{index}]"
    if not isinstance(value, str):
        raise s.error(key, value, "must be a URL like http://127.0.0.1:2379")
    url = urlsplit(value.strip())
    if url.username is not None or url.password is not None:
        shown = url._replace(netloc=f"***@{url.netloc.rsplit('@', 1)[1]}").geturl()
        raise s.error(key, shown, "must carry no credentials (they would go unused and "
                      "show in logs): authenticate with a TLS client certificate (cert, key)")
    try:
        port = url.port
    except ValueError:
        port = None
    if url.scheme not in ("http", "https") or not url.hostname or port is None \
            or url.path not in ("", "/") or url.query or url.fragment:
        raise s.error(key, value, "must be http(s)://HOST:PORT, like http://127.0.0.1:2379")
    return f"{url.scheme}://{url.netloc}"


def _parse_file(s: Section, key: str) -> str | None:
    path = s.string(key, None)
    if path is not None and not os.path.isfile(path):
        raise s.error(s.key(key), path, "is not a readable file")
    return path
