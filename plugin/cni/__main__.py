"""`python -m plugin.cni`: the CNI front-end, as a runtime would run the installed plugin."""

import sys

from plugin.cni.main import main

sys.exit(main())
