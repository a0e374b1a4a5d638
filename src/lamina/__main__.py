"""``python -m lamina``: the same guarded entry point as the ``lamina`` command."""

import sys

from lamina.entry import main

sys.exit(main())
