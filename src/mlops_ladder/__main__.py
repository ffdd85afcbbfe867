"""Allow `python -m mlops_ladder doctor ...`."""

import sys

from .cli import main

sys.exit(main())
