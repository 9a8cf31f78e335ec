"""``python -m lamina`` runs the command line."""

import sys

from lamina.cli import main

sys.exit(main())
