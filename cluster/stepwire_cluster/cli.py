"""`python -m stepwire_cluster run --ray ADDRESS <stepwire run arguments>`."""

from __future__ import annotations

import logging
import sys

from . import args as cluster_args
from . import driver

USAGE = "usage: python -m stepwire_cluster run --ray ADDRESS [options] <stepwire run arguments>  (run --help for more)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 1
    if argv[0] != "run":
        print(f"error: unknown command {argv[0]!r}\n{USAGE}", file=sys.stderr)
        return 1
    parsed = cluster_args.split(argv[1:])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return driver.run(parsed)
