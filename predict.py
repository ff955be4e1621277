#!/usr/bin/env python
"""The seed's `predict.py`: the same as `tartarus predict` (see `tartarus predict --help`)."""

import sys

from tartarus.cli import main

if __name__ == "__main__":
    sys.exit(main(["predict", *sys.argv[1:]]))
