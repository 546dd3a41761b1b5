"""`vlanpipe-cni` (and `python -m plugin.frontends.cni`): a CNI call, or an operator's command.

A runtime always sets CNI_COMMAND; an operator typing `vlanpipe-cni doctor` does not, and
gives arguments. The choice lives here, above both front-ends, so that neither imports
the other's module back (the exec front-end hands CNI calls to the CNI one).
"""

from __future__ import annotations

import os
import sys


def cni() -> int:
    if not os.environ.get("CNI_COMMAND") and sys.argv[1:]:
        from plugin.frontends import exec_cli

        return exec_cli.main()
    from plugin.frontends.cni.main import main

    return main()
