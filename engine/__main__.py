"""``python -m engine`` runs the ``tokensweep`` command."""

import sys

from engine.interfaces.cli import main

sys.exit(main())
