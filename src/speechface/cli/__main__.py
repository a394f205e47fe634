"""``python -m speechface.cli``: the ``speechface`` command."""

import sys

from .main import main

sys.exit(main())
