"""Allow ``python -m buzzpipe``."""

import sys

from buzzpipe.cli import main

sys.exit(main())
