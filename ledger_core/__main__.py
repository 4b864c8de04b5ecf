"""Allow ``python -m ledger_core`` as a synonym of the ``transactiva`` command."""

import sys

from ledger_core.cli import main

sys.exit(main())
