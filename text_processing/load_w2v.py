#!/usr/bin/env python
"""The seed's `load_w2v.py`: the same as `tartarus text w2v` (see `tartarus text w2v --help`)."""

import sys

from tartarus.cli import main

if __name__ == "__main__":
    sys.exit(main(["text", "w2v", *sys.argv[1:]]))
