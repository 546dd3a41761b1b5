"""`python -m plugin.frontends.cni`: the CNI front-end, as a runtime would run the installed
plugin (an operator's command when called with arguments and no CNI_COMMAND)."""

import sys

from plugin.frontends.entry import cni

sys.exit(cni())
