#!/usr/bin/env python
"""Generate the embedded dummy dataset DUMMY (same as ``tartarus dummy-data``).

    python dummy_data/generate.py [--data-dir D] [--seed S] [--items N] [--overwrite]
"""

import argparse
import sys
from pathlib import Path

try:
    from tartarus.datasets.dummy import generate_dummy
    from tartarus.layout import default_root
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from tartarus.datasets.dummy import generate_dummy
    from tartarus.layout import default_root


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate the embedded dummy dataset DUMMY under a data root.")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data root (default: $TARTARUS_DATA, else ./data)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--items", type=int, default=60, help="number of items, at least 15 (default 60)")
    parser.add_argument("--users", type=int, default=400, help="number of listeners (default 400)")
    parser.add_argument("--overwrite", action="store_true", help="rewrite the dataset if it is already there")
    args = parser.parse_args(argv)
    try:
        report = generate_dummy(args.data_dir or default_root(), seed=args.seed, n_items=args.items,
                                n_users=args.users, overwrite=args.overwrite)
    except ValueError as exc:
        parser.error(str(exc))
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
