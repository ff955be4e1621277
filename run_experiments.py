#!/usr/bin/env python
"""The seed's `run_experiments.py`: the same as `tartarus run` (see `tartarus run --help`)."""

import sys

from tartarus.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
