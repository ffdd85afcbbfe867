"""Allow `python -m <package> <command>` (what dvc.yaml runs)."""

import sys

from .cli import main

sys.exit(main())
