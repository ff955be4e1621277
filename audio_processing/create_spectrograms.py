#!/usr/bin/env python
"""The seed's `create_spectrograms.py`: the same as `tartarus spectrograms` (see `tartarus spectrograms --help`)."""

import sys

from tartarus.cli import main

if __name__ == "__main__":
    sys.exit(main(["spectrograms", *sys.argv[1:]]))
