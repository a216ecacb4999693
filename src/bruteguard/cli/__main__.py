"""``python -m bruteguard.cli``: the ``bruteguard`` command, as ``cli.py`` ran before it
became this package."""

import sys

from bruteguard.cli import main

sys.exit(main())
