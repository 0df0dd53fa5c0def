#!/usr/bin/env python3
"""Give ALFWorld recordings made before observations carried the `room` part that part.

    .venv/bin/python bridges/alfworld/add_room_part.py OLD.jsonl NEW.jsonl

The part is a function of each episode's first observation (see `room_part` in bridge.py), so
an old recording gains exactly what the bridge would have sent had it been recorded today,
without replaying a single game. Lines of interleaved episodes (`--jobs`) are handled; other
kinds of line and episodes that already have the part pass through unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridge import room_part  # noqa: E402


def episode_key(record: dict) -> str:
    return json.dumps(record.get("episode"), sort_keys=True)


def observations(value):
    """Every observation object in a record, however deep."""
    if isinstance(value, dict):
        obs = value.get("observation")
        if isinstance(obs, dict) and "text" in obs:
            yield obs
        for v in value.values():
            yield from observations(v)
    elif isinstance(value, list):
        for v in value:
            yield from observations(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", help="recording to read")
    ap.add_argument("new", help="recording to write (must not exist)")
    args = ap.parse_args()
    if os.path.exists(args.new):
        print(f"{args.new} exists; give a new path", file=sys.stderr)
        return 2
    with open(args.old, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    rooms: dict = {}
    for r in records:
        if r.get("kind") == "transition" and r.get("level") == "low" and r.get("step") == 0:
            rooms[episode_key(r)] = room_part(r["state"]["observation"]["text"])
    changed = 0
    with open(args.new, "x", encoding="utf-8") as out:
        for r in records:
            room = rooms.get(episode_key(r), "")
            for obs in observations(r) if room else ():
                if "room" not in obs.get("parts", {}):
                    obs.setdefault("parts", {})["room"] = room
                    changed += 1
            out.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"{len(rooms)} episodes, {changed} observations given a room part -> {args.new}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
