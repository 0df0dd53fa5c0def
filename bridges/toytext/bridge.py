#!/usr/bin/env python3
"""Gymnasium's own text games (Taxi, FrozenLake) over the stepwire environment plane.

    .venv/bin/python bridges/toytext/bridge.py [--train N] [--valid N] [--test N]

Tasks are registered Gymnasium ids (TASKS); the splits are disjoint ranges of Gymnasium seeds
(train first, then valid, then test); variation v of a split is its v-th seed. The observation
is the game's map as text with the player marked, plus a sentence saying where things are (see
README.md beside this file); actions are named; the admissible actions follow Taxi's action mask;
env/expertAction is value iteration on the game's own transition table.
"""

from __future__ import annotations

import argparse
import os
import sys

try:
    import stepwire_bridge as sw
except ImportError:  # not installed: the SDK from this checkout
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import stepwire_bridge as sw
from stepwire_bridge.gymnasium import GymnasiumEnvironment, GymTask, SeedSplits, require, value_iteration_expert

TAXI_LABELS = ["go south", "go north", "go east", "go west", "pick up passenger", "drop off passenger"]
LAKE_LABELS = ["go west", "go south", "go east", "go north"]
TAXI_STOPS = "RGYB"  # Taxi's locs, in order


def taxi_text(env, obs, info) -> str:
    """The 5x5 map (walls `|`, stops R G Y B) with the taxi as `T` (`@` with the passenger in it)."""
    raw = env.unwrapped
    row, col, passenger, dest = raw.decode(int(obs))
    rows = [[c.decode() for c in line] for line in raw.desc]
    rows[row + 1][2 * col + 1] = "@" if passenger == 4 else "T"
    where = "in the taxi" if passenger == 4 else f"waiting at {TAXI_STOPS[passenger]}"
    return ("\n".join("".join(r) for r in rows)
            + f"\nThe taxi is at row {row}, column {col} (row 0 is the top). The passenger is {where}; "
              f"the destination is {TAXI_STOPS[dest]}.")


def taxi_goal(env, obs, info) -> str:
    _, _, passenger, dest = env.unwrapped.decode(int(obs))
    return (f"Drive the taxi to the passenger at {TAXI_STOPS[passenger]}, pick them up, "
            f"and drop them off at {TAXI_STOPS[dest]}.")


def taxi_subtask(env) -> str:
    """The leg of the ride the taxi is on (the expert's subtask)."""
    raw = env.unwrapped
    row, col, passenger, dest = raw.decode(int(raw.s))
    if passenger == 4:
        return f"drop off the passenger at {TAXI_STOPS[dest]}"
    return f"pick up the passenger at {TAXI_STOPS[passenger]}"


def expert_subtask(env) -> str:
    return taxi_subtask(env) if env.spec.id.startswith("Taxi") else "walk to the goal"


def lake_text(env, obs, info) -> str:
    """The lake (S start, F frozen, H hole, G goal) with the player as `P`."""
    raw = env.unwrapped
    size = raw.desc.shape[1]
    row, col = divmod(int(obs), size)
    rows = [[c.decode() for c in line] for line in raw.desc]
    under = {"S": "the start", "F": "frozen ice", "H": "a hole", "G": "the goal"}[rows[row][col]]
    rows[row][col] = "P"
    return "\n".join("".join(r) for r in rows) + f"\nYou (P) are at row {row}, column {col}, on {under}."


def lake_goal(env, obs, info) -> str:
    slip = " The ice is slippery: a move may take you sideways." if env.spec.kwargs.get("is_slippery", True) else ""
    return "Walk from the start S to the goal G without falling into a hole H." + slip


# task id -> (Gymnasium id, make kwargs, labels, renderer, describer, max score)
TASKS = {
    "taxi": ("Taxi-v4", {}, TAXI_LABELS, taxi_text, taxi_goal, None),
    "frozenlake": ("FrozenLake-v1", {"is_slippery": True}, LAKE_LABELS, lake_text, lake_goal, 1.0),
    "frozenlake-8x8": ("FrozenLake8x8-v1", {"is_slippery": True}, LAKE_LABELS, lake_text, lake_goal, 1.0),
}


class ToyText(GymnasiumEnvironment):
    def __init__(self, splits: SeedSplits) -> None:
        from importlib.metadata import version

        tasks = [GymTask(t, gym_id, f"{gym_id} from Gymnasium's toy_text", dict(kw), labels=labels, max_score=top,
                         render=render, describe=describe)
                 for t, (gym_id, kw, labels, render, describe, top) in TASKS.items()]
        super().__init__("toytext", tasks, splits, expert=value_iteration_expert(subtask=expert_subtask),
                         version=f"gymnasium {version('gymnasium')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=10000, help="seeds in the train split (from 0)")
    ap.add_argument("--valid", type=int, default=500, help="seeds in the valid split (after train)")
    ap.add_argument("--test", type=int, default=500, help="seeds in the test split (after valid)")
    args = ap.parse_args()
    if min(args.train, args.valid, args.test) < 1:
        ap.error("--train, --valid and --test must be at least 1")
    require()
    splits = SeedSplits.from_sizes(train=args.train, valid=args.valid, test=args.test)
    sw.serve(lambda: ToyText(splits))


if __name__ == "__main__":
    main()
