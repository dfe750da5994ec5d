"""``python -m benchmarks.tables``."""

import sys

from benchmarks.tables import main

sys.exit(main())
