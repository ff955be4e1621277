#!/usr/bin/env python
"""The seed's `create_patches.py`: the same as `tartarus patches` (see `tartarus patches --help`)."""

import sys

from tartarus.cli import main

if __name__ == "__main__":
    sys.exit(main(["patches", *sys.argv[1:]]))
