"""``python -m medledger.cli``: the ``medledger`` command."""

import sys

from medledger.cli import main

sys.exit(main())
