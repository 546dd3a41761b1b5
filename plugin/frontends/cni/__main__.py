"""`python -m plugin.frontends.cni`: the CNI front-end, as a runtime would run the installed plugin."""

import sys

from plugin.frontends.cni.main import main

sys.exit(main())
