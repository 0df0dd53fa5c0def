#!/usr/bin/env python3
"""Generate the TextWorld games the textworld bridge plays, with TextWorld's own generators.

    .venv/bin/python scripts/make-textworld-games.py [--per-family 4] [--jobs 2] [--out DIR]
                                                     [--families custom,coin_collector,cooking]

Games go to `<out>/<family>/<family>-NNN.z8` (+ `.json`), default `$STEPWIRE_TEXTWORLD_GAMES`,
else `<repo>/.cache/textworld/games`. Game N of a family always comes from the same seed, and
games already on disk are skipped, so reruns are instant and a larger `--per-family` only adds.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bridges", "textworld"))
import games  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-family", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=games.default_games_dir())
    ap.add_argument("--families", default=",".join(games.FAMILIES))
    args = ap.parse_args()
    fams = [f for f in args.families.split(",") if f]
    made = games.make_games(args.out, args.per_family, fams, args.jobs,
                            log=lambda m: print(f"[make-textworld-games] {m}", file=sys.stderr, flush=True))
    print(f"[make-textworld-games] {sum(len(v) for v in made.values())} games in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
