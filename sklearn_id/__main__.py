"""``python -m sklearn_id``: see :mod:`sklearn_id._cli`."""

import sys

from sklearn_id._cli import main

if __name__ == "__main__":
    sys.exit(main())
