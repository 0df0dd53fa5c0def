#!/usr/bin/env python3
"""ALFWorld (text, TextWorld engine) over the stepwire environment plane.

    .venv/bin/python bridges/alfworld/bridge.py [--data DIR] [--expert-max-steps 200]

Games come from `$ALFWORLD_DATA/json_2.1.1/<split>/` (default `<repo>/.cache/alfworld`, made by
`scripts/prepare-alfworld.py`, or the official `alfworld-download` layout). Tasks: `alfworld`
(every game of a split) and the six ALFWorld task types; see README.md beside this file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from typing import Dict, List, Optional

import stepwire_bridge as sw

log = logging.getLogger("stepwire_bridge.alfworld")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPLITS = ("train", "valid_seen", "valid_unseen", "valid_train")
TASK_TYPES = ("pick_and_place_simple", "look_at_obj_in_light", "pick_clean_then_place_in_recep",
              "pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep", "pick_two_obj_and_place")
ALL = "alfworld"
BANNER = re.compile(r"^\s*-= Welcome to TextWorld, ALFRED! =-\s*")
ROOM = re.compile(r"Looking quickly around you, you see (.*?)\.\s*(?:\n|$)")
ROOM_MODES = ("every", "none")


def room_part(first_observation: str) -> str:
    """The room's receptacles from a game's first observation, in natural order ("bed 1, desk 1,
    desk 2, drawer 1, ..."): the `room` part every observation carries, so that a policy which
    sees one observation at a time still knows where it has not looked yet (the STEP-HRL
    paper's ALFWorld layout repeats the room description the same way)."""
    m = ROOM.search(first_observation)
    if not m:
        return ""
    items = [re.sub(r"^(?:and )?an? ", "", x.strip()) for x in re.split(r", | and ", m.group(1))]

    def natural(item: str):
        name, _, number = item.rpartition(" ")
        return (name, int(number)) if number.isdigit() else (item, 0)

    return ", ".join(sorted((i for i in items if i), key=natural))


def data_dir(arg: Optional[str]) -> str:
    return os.path.abspath(arg or os.environ.get("ALFWORLD_DATA") or os.path.join(ROOT, ".cache", "alfworld"))


def collect_games(root: str) -> Dict[str, Dict[str, List[str]]]:
    """{split: {task_type: [game.tw-pddl paths, sorted]}} with AlfredTWEnv's own filter: the game
    file exists, is marked solvable, and its path holds neither `movable` nor `Sliced`."""
    out: Dict[str, Dict[str, List[str]]] = {}
    for split in SPLITS:
        base = os.path.join(root, "json_2.1.1", split)
        by_type: Dict[str, List[str]] = {t: [] for t in TASK_TYPES}
        if os.path.isdir(base):
            for game in sorted(os.listdir(base)):
                if "movable" in game or "Sliced" in game:
                    continue
                ttype = game.split("-", 1)[0]
                if ttype not in by_type:
                    continue
                gdir = os.path.join(base, game)
                for trial in sorted(os.listdir(gdir)):
                    path = os.path.join(gdir, trial, "game.tw-pddl")
                    if os.path.exists(path) and os.path.exists(os.path.join(gdir, trial, "traj_data.json")):
                        by_type[ttype].append(path)
        out[split] = by_type
    return out


def subtask_name(policy) -> str:
    """The subtask of the hand-coded expert's current subgoal, as a short imperative phrase.

    The expert's subgoals come in pairs: find (or go to) a thing, then act on it (take, heat,
    cool, clean, use, put). Each pair is one subtask named by its act, because the end of a
    find cannot be known when its last action is chosen (only the observation after it shows
    the object), while the act that ends each pair can be: the low level's done flag then falls
    on an action it sees coming. See README.md beside this file."""
    goals = policy.subgoals
    pair = min(max(policy.subgoal_idx, 0), len(goals) - 1) // 2
    if 2 * pair + 1 >= len(goals):  # the expert's initial one-subgoal "look" state
        return "look around"
    where, act = goals[2 * pair], goals[2 * pair + 1]
    verb, obj = act["action"], str(policy.task_params.get("object_target", "")).lower()
    place = str(where["param"]).lower()
    if place == "sinkbasin" and not any("sinkbasin" in r for r in policy.receptacles.values()):
        place = "bathtubbasin"  # what the expert itself uses in a room without a sink
    if verb == "take":
        return f"take another {obj}" if pair > 0 else f"take a {obj}"
    if verb in ("heat", "cool", "clean"):
        return f"{verb} the {obj} with the {place}"
    if verb == "use":
        return f"use the {str(act['param']).lower()}"
    if verb == "put":
        return f"put the {obj} in/on the {str(act['param']).lower()}"
    return f"{verb} the {str(act['param']).lower()}"


class ALFWorld(sw.Environment):
    name = "alfworld"
    seeded_reset = True
    reset_options = ["invalidAction", "room"]
    observation_parts = ["room"]
    default_split = "train"

    def __init__(self, root: str, expert_max_steps: int = 200) -> None:
        from importlib.metadata import version

        self.version = "alfworld " + version("alfworld")
        self.root = root
        self.expert_max_steps = expert_max_steps
        self.games = collect_games(root)
        n = {s: sum(len(v) for v in g.values()) for s, g in self.games.items()}
        if not any(n.values()):
            log.warning("no ALFWorld games under %s/json_2.1.1: run scripts/prepare-alfworld.py "
                        "(or set ALFWORLD_DATA)", root)
        else:
            log.info("ALFWorld games in %s: %s", root, n)
        self._env = None
        self._state = None
        self._expert = None
        self._expert_next: Optional[str] = None
        self._expert_subtask: Optional[str] = None
        self._expert_note = ""
        self._invalid_error = True
        self._gamefile = ""
        self._room = ""

    def tasks(self) -> List[sw.Task]:
        splits = [s for s in SPLITS if any(self.games[s].values())] or list(SPLITS)
        tasks = [sw.Task(ALL, {s: sum(len(v) for v in self.games[s].values()) for s in splits},
                         "Every ALFWorld text game of the split (all six task types)")]
        for t in TASK_TYPES:
            tasks.append(sw.Task(t, {s: len(self.games[s][t]) for s in splits},
                                 f"ALFWorld games of type {t}"))
        return tasks

    def _game(self, task: str, split: str, variation: int) -> str:
        if task == ALL:  # all types, ordered by path (the official layout's order)
            return sorted(p for t in TASK_TYPES for p in self.games[split][t])[variation]
        return self.games[split][task][variation]

    def reset(self, task, split, variation, seed, options) -> sw.Reset:
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
        from alfworld.agents.expert import HandCodedTWAgent

        mode = options.get("invalidAction", "error")
        if mode not in ("error", "observe"):
            raise sw.InvalidParams("`invalidAction` must be \"error\" or \"observe\"")
        self._invalid_error = mode == "error"
        room_mode = options.get("room", "every")
        if room_mode not in ROOM_MODES:
            raise sw.InvalidParams("`room` must be \"every\" (the room's receptacles as part `room` of every "
                                   "observation) or \"none\"")
        path = self._game(task, split, variation)
        if self._env is not None:
            try:
                self._env.close()
            except Exception:
                pass
            self._env = None
        infos = textworld.EnvInfos(won=True, lost=True, admissible_commands=True, facts=True, extras=["gamefile"])
        self._env = textworld.start(path, request_infos=infos, wrappers=[AlfredDemangler, AlfredInfos])
        self._state = self._env.reset()
        self._gamefile = path
        # The hand-coded expert, driven as alfworld's AlfredExpert wrapper drives it, but so that
        # an expert failure (its 200-step timeout, say) never costs the agent its step.
        self._expert = HandCodedTWAgent(max_steps=self.expert_max_steps)
        self._expert.reset(path)
        self._expert_next, self._expert_note = "look", ""
        try:
            self._expert.observe(self._state["feedback"])
            self._expert_subtask = subtask_name(self._expert.policy)
        except Exception as e:
            self._expert_next, self._expert_note = None, f"expert failed: {e}"
        feedback = self._state["feedback"]
        m = re.search(r"Your task is to: (.*)", feedback)
        desc = m.group(1).strip() if m else ""
        rel = os.path.relpath(os.path.dirname(path), os.path.join(self.root, "json_2.1.1"))
        text = BANNER.sub("", feedback).strip()
        self._room = room_part(text) if room_mode == "every" else ""
        return sw.Reset(self._observation(text), desc, max_score=1, meta={"game": rel})

    def _observation(self, text: str) -> sw.Observation:
        return sw.Observation(text, {"room": self._room} if self._room else {})

    def step(self, action: str) -> sw.Step:
        if self._env is None:
            raise sw.NoEpisode("no ALFWorld episode")
        cmd = action.strip()
        if cmd not in self._state["admissible_commands"] and self._invalid_error:
            # The engine would answer "Nothing happens." and change nothing.
            raise sw.InvalidAction(f"not a valid command here: {action!r}", data={"observation": "Nothing happens."})
        self._state, _score, done = self._env.step(cmd)
        won = bool(self._state["won"])
        if self._expert_next is not None or self._expert_note == "":
            try:
                nxt = self._expert.act(self._state, 0, won, cmd)
                self._expert_next = nxt if nxt in self._state["admissible_commands"] else "look"
                self._expert_subtask = subtask_name(self._expert.policy)
            except Exception as e:  # HandCodedAgentTimeout and friends
                self._expert_next, self._expert_note = None, f"expert gave up: {type(e).__name__} {e}"
        return sw.Step(self._observation(self._state["feedback"].strip()), reward=1.0 if won else 0.0, score=1.0 if won else 0.0,
                       done=bool(done) or won or bool(self._state["lost"]), won=won)

    def admissible_actions(self) -> List[str]:
        if self._env is None:
            raise sw.NoEpisode("no ALFWorld episode")
        return list(self._state["admissible_commands"])

    def expert_action(self) -> sw.Expert:
        if self._expert_next is None:
            raise sw.NoExpert(self._expert_note or "the hand-coded expert has no action")
        return sw.Expert(self._expert_next, self._expert_subtask)

    def close(self) -> None:
        if self._env is not None:
            try:
                self._env.close()
            except Exception:
                pass
            self._env = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="ALFWorld data dir holding json_2.1.1/ (default $ALFWORLD_DATA, "
                                                  "else .cache/alfworld)")
    ap.add_argument("--expert-max-steps", type=int, default=200, help="the hand-coded expert's own step budget")
    args = ap.parse_args()
    root = data_dir(args.data)
    os.environ["ALFWORLD_DATA"] = root  # alfworld.info creates this dir on import: keep it ours
    sw.serve(lambda: ALFWorld(root, args.expert_max_steps))


if __name__ == "__main__":
    main()
