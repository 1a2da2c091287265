"""Entry point of the frozen app: the same ``radscope`` command as the console script."""

import sys

from viewer.cli import main

if __name__ == "__main__":
    sys.exit(main())
