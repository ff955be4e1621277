#!/usr/bin/env python
"""The seed's `load_vsm.py`: the same as `tartarus text vsm` (see `tartarus text vsm --help`)."""

import sys

from tartarus.cli import main

if __name__ == "__main__":
    sys.exit(main(["text", "vsm", *sys.argv[1:]]))
