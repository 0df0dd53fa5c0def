#!/usr/bin/env python3
"""BabyAI (the `minigrid` package) over the stepwire environment plane, as text.

    .venv/bin/python bridges/babyai/bridge.py [--train N] [--valid N] [--test N] [--levels a,b]

Tasks are BabyAI levels (registered Gymnasium ids, see LEVELS); the splits are disjoint ranges
of Gymnasium seeds (train first, then valid, then test); variation v of a split is its v-th seed.
Observations are the agent's egocentric 7x7 view in English (text_view.py; rules in README.md),
the task description is the level's mission, actions are the seven MiniGrid actions by name,
and env/expertAction is minigrid's own BabyAIBot, with the subtask it is working on.
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
from stepwire_bridge.gymnasium import GymnasiumEnvironment, GymTask, SeedSplits, require

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # text_view.py

# The MiniGrid actions by index (minigrid.core.actions.Actions).
LABELS = ["turn left", "turn right", "go forward", "pick up", "drop", "toggle", "done"]
# task id -> (Gymnasium id, description); all solved by BabyAIBot.
LEVELS = {
    "goto-red-ball": ("BabyAI-GoToRedBall-v0", "go to the red ball in a room with distractors"),
    "goto-obj": ("BabyAI-GoToObj-v0", "go to the only object in the room"),
    "goto-local": ("BabyAI-GoToLocal-v0", "go to an object among distractors"),
    "pickup-loc": ("BabyAI-PickupLoc-v0", "pick up an object described by its location"),
    "open-door": ("BabyAI-OpenDoor-v0", "open a door of a given colour"),
    "put-next-local": ("BabyAI-PutNextLocal-v0", "put an object next to another one"),
}
DEFAULT_LEVELS = "goto-red-ball,goto-obj,goto-local,pickup-loc,open-door"


# An ObjDesc's `loc` as BabyAI's missions say it.
LOCATIONS = {"left": "on your left", "right": "on your right", "front": "in front of you", "behind": "behind you"}


def describe_goal(desc) -> str:
    """An ObjDesc as "the red ball", "the box behind you" (from its fields: its `surface` would
    search the grid and reset the matches the bot relies on)."""
    words = [w for w in (desc.color, desc.type) if w]
    loc = getattr(desc, "loc", None)
    return "the " + " ".join(words or ["object"]) + (f" {LOCATIONS.get(loc, loc)}" if loc else "")


def subtask_of(bot) -> str:
    """The subtask the bot's next action serves, from the top of its plan (README.md)."""
    from minigrid.envs.babyai.core.verifier import ObjDesc

    if not bot.stack:
        return "finish"
    top = type(bot.stack[-1]).__name__
    env = bot.mission.unwrapped
    if top == "PickupSubgoal":
        cell = env.grid.get(*env.front_pos)
        return f"pick up the {cell.color} {cell.type}" if cell is not None else "pick up"
    if top == "DropSubgoal":
        return f"drop the {env.carrying.color} {env.carrying.type}" if env.carrying else "drop"
    if top in ("OpenSubgoal", "CloseSubgoal"):
        cell = env.grid.get(*env.front_pos)
        verb = "open" if top == "OpenSubgoal" else "close"
        return f"{verb} the {cell.color} door" if cell is not None and cell.type == "door" else f"{verb} the door"
    for goal in reversed(bot.stack):  # GoNextTo / Explore: the object the plan is heading for
        if type(goal).__name__ == "GoNextToSubgoal" and isinstance(goal.datum, ObjDesc):
            return f"go to {describe_goal(goal.datum)}"
    return "explore"


def babyai_expert(env):
    """minigrid's BabyAIBot for this episode: an advisor `advise(last_action) -> (action, subtask)`."""
    from minigrid.utils.baby_ai_bot import BabyAIBot

    bot = BabyAIBot(env)

    def advise(last_action):
        action = bot.replan(last_action)
        return int(action), subtask_of(bot)

    return advise


def render(env, obs, info) -> sw.Observation:
    from text_view import carrying_text, render_view

    carrying = env.unwrapped.carrying
    return sw.Observation(render_view(obs["image"], obs["direction"], carrying),
                          {"inventory": carrying_text(carrying)})


class BabyAI(GymnasiumEnvironment):
    observation_parts = ["inventory"]

    def __init__(self, levels, splits: SeedSplits) -> None:
        from importlib.metadata import version

        tasks = [GymTask(t, LEVELS[t][0], f"{LEVELS[t][1]} ({LEVELS[t][0]})", labels=LABELS, max_score=1.0)
                 for t in levels]
        super().__init__("babyai", tasks, splits, render=render, expert=babyai_expert,
                         version=f"minigrid {version('minigrid')}, gymnasium {version('gymnasium')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=10000, help="seeds in the train split (from 0)")
    ap.add_argument("--valid", type=int, default=500, help="seeds in the valid split (after train)")
    ap.add_argument("--test", type=int, default=500, help="seeds in the test split (after valid)")
    ap.add_argument("--levels", default=DEFAULT_LEVELS,
                    help=f"comma-separated task ids among: {', '.join(LEVELS)} (default: %(default)s)")
    args = ap.parse_args()
    levels = [lv.strip() for lv in args.levels.split(",") if lv.strip()]
    unknown = [lv for lv in levels if lv not in LEVELS]
    if unknown or not levels:
        ap.error(f"unknown level(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(LEVELS)}")
    if min(args.train, args.valid, args.test) < 1:
        ap.error("--train, --valid and --test must be at least 1")
    require("minigrid")
    splits = SeedSplits.from_sizes(train=args.train, valid=args.valid, test=args.test)
    sw.serve(lambda: BabyAI(levels, splits))


if __name__ == "__main__":
    main()
