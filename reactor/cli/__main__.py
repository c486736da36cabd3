"""``python -m reactor.cli``: the same as the ``reactor`` console script."""

import sys

from reactor.cli.main import main

sys.exit(main())
