#!/usr/bin/env python3
"""TextWorld over the stepwire environment plane.

    .venv/bin/python bridges/textworld/bridge.py [--games DIR] [--generate N] [--jobs 2]

Tasks are the game families found under the games folder (default `$STEPWIRE_TEXTWORLD_GAMES`,
else `<repo>/.cache/textworld/games`, filled by `scripts/make-textworld-games.py`): one task per
sub-folder (`custom`, `coin_collector`, `cooking`), its games (sorted by name) the variations of
its `train` split; `.z8`/`.ulx` files directly in the folder form the task `games`. The reset
option `game` plays any game file a user points at, whatever the task (`{"task": "custom",
"options": {"game": "/path/x.z8"}}`); with no games on disk the only task is `file`.
See README.md beside this file.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import Dict, List, Optional

import stepwire_bridge as sw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import games as twgames  # noqa: E402

log = logging.getLogger("stepwire_bridge.textworld")

FILE_TASK = "file"
LOOSE_TASK = "games"
GAME_EXT = (".z8", ".ulx", ".z5", ".z3")
STATUS = re.compile(r"\n*>\s*-= [^\n]*=-[^\n]*\s*$")  # the status line after the prompt
PROMPT = re.compile(r"\n*>\s*$")


def clean(text: str) -> str:
    text = STATUS.sub("", text or "")
    return PROMPT.sub("", text).strip()


BANNER_LINE = re.compile(r"^[\s_|\\/$<>()-]*$")  # a line of the ASCII-art logo, or blank


def clean_intro(text: str) -> str:
    """The first observation without TextWorld's ASCII-art logo: about 800 tokens of noise that
    would crowd a small policy's context out of the objective and the room."""
    lines = clean(text).split("\n")
    while lines and BANNER_LINE.match(lines[0]):
        lines.pop(0)
    return "\n".join(lines).strip()


# -- the expert's subtasks -----------------------------------------------------------------------
DIRECTIONS = ("north", "south", "east", "west")
_GO = re.compile(r"^go (north|south|east|west)$")
# Commands that only look: they join the subtask of the command after them.
_LOOK = re.compile(r"^(?:look|inventory|examine .+|read .+)$")
# (pattern, name): the first that matches names a command's subtask ({n}: the n-th object).
_ACTS = [
    (re.compile(r"^take (.+?) from (.+)$"), "take {0}"),
    (re.compile(r"^(?:insert|put) (.+?) into (.+)$"), "put {0} in {1}"),
    (re.compile(r"^put (.+?) (in|on) (.+)$"), "put {0} {1} {2}"),
    (re.compile(r"^(unlock|lock) (.+?) with (.+)$"), "{0} {1} with {2}"),
    (re.compile(r"^(cook|slice|chop|dice) (.+?) with (.+)$"), "{0} {1} with {2}"),
    (re.compile(r"^(take|open|close|drop|eat|drink|prepare) (.+)$"), "{0} {1}"),
]


def _the(thing: str) -> str:
    return thing if thing.startswith("the ") else f"the {thing}"


def _command_name(command: str) -> str:
    for pattern, template in _ACTS:
        m = pattern.match(command)
        if m:
            groups = m.groups()
            args = [g if g in ("in", "on") or (k == 0 and template.startswith("{0} ")) else _the(g)
                    for k, g in enumerate(groups)]
            return template.format(*args)
    return command


def command_subtasks(commands: List[str], room: Optional[str] = None,
                     exits: Optional[Dict[str, Dict[str, str]]] = None) -> List[str]:
    """The subtask of every command of a plan (same length), by rules on the plan alone (see
    README.md, Expert's subtasks):

    * a run of `go <direction>` is one subtask, "go to the <room the run ends in>" when the map
      (`exits`: {room: {direction: room}}, from `room`, where the plan starts) knows it, else
      "go <directions>" ("go east, north");
    * `take X from Y` is "take the X"; `insert/put X into Y` "put the X in the Y"; `put X on Y`
      "put the X on the Y"; `unlock X with K`, `cook X with Y`, `slice X with K` the phrase
      ("unlock the safe with the passkey"); `open/close/drop/eat/drink X` likewise ("eat the
      meal"); any other command is named by itself;
    * commands that only look (`look`, `inventory`, `examine X`) belong to the subtask that
      follows them (to the one before at the end of the plan).

    Consecutive commands with the same name form one subtask."""
    exits = exits or {}
    names = sw.SubtaskNames(len(commands))
    dirs: List[str] = []  # the directions of the run of moves in progress
    for i, raw in enumerate(commands):
        command = " ".join(raw.strip().split())
        go = _GO.match(command)
        if _LOOK.match(command):
            names.look(i)
        elif go:
            direction = go.group(1)
            room = exits.get(room, {}).get(direction) if room is not None else None
            dirs = (dirs if names.run is not None else []) + [direction]
            names.move(i, f"go to the {room}" if room else "go " + ", ".join(dirs))
        else:
            names.act(i, _command_name(command))
    return names.names()


def _exits(facts) -> Dict[str, Dict[str, str]]:
    """The map from the game's facts: `north_of(a, b)` (a is north of b) gives {b: {north: a}}."""
    out: Dict[str, Dict[str, str]] = {}
    for f in facts or []:
        direction = f.name[:-3] if f.name.endswith("_of") else None
        if direction in DIRECTIONS and len(f.arguments) == 2:
            there, here = (a.name for a in f.arguments)
            out.setdefault(here, {})[direction] = there
    return out


def _room(facts) -> Optional[str]:
    """The player's room (`at(P, room)`), or None."""
    for f in facts or []:
        if f.name == "at" and len(f.arguments) == 2 and f.arguments[0].type == "P":
            return f.arguments[1].name
    return None


class TextWorld(sw.Environment):
    name = "textworld"
    seeded_reset = True
    reset_options = ["game"]
    default_split = "train"

    def __init__(self, games_dir: str, generate: int = 0, jobs: int = 2) -> None:
        from importlib.metadata import version

        self.version = "textworld " + version("textworld")
        self.games_dir = os.path.abspath(games_dir)
        self.generate = generate
        self.jobs = jobs
        self._families: Optional[Dict[str, List[str]]] = None
        self._env = None
        self._state = None
        self._walk: List[str] = []
        self._walk_i = 0
        self._on_walk = True
        self._max_score: Optional[float] = None
        # The plan the expert's subtasks were named from, its names, and how far it is played.
        self._exits: Dict[str, Dict[str, str]] = {}
        self._seg: List[str] = []
        self._seg_names: List[str] = []
        self._seg_i = 0

    def _scan(self) -> Dict[str, List[str]]:
        if self._families is None:
            if self.generate > 0:
                with self.progress("Generating TextWorld games") as p:
                    twgames.make_games(self.games_dir, self.generate, twgames.FAMILIES, self.jobs,
                                       log=(lambda m: p.report(m)) if p is not None else log.info)
            fams: Dict[str, List[str]] = {}
            if os.path.isdir(self.games_dir):
                loose = []
                for n in sorted(os.listdir(self.games_dir)):
                    full = os.path.join(self.games_dir, n)
                    if os.path.isdir(full):
                        found = twgames.list_games(self.games_dir, n)
                        if found:
                            fams[n] = found
                    elif n.endswith(GAME_EXT):
                        loose.append(full)
                if loose:
                    fams[LOOSE_TASK] = loose
            if not fams:
                log.warning("no TextWorld games under %s: run scripts/make-textworld-games.py (or --generate N)",
                            self.games_dir)
            self._families = fams
        return self._families

    def tasks(self) -> List[sw.Task]:
        tasks = [sw.Task(f, {"train": len(g)}, f"TextWorld {f} games" + (" generated by tw-make" if f in
                 twgames.FAMILIES else "")) for f, g in self._scan().items()]
        if not tasks:  # no games on disk: still a task to pair with the option `game`
            tasks.append(sw.Task(FILE_TASK, {"train": 1}, "The game file named by the reset option `game`"))
        return tasks

    def reset(self, task, split, variation, seed, options) -> sw.Reset:
        import textworld

        path = options.get("game")
        if path is not None:  # a user's game: played whatever task/variation the reset names
            if not isinstance(path, str) or not path:
                raise sw.InvalidParams("the reset option `game` must be a path to a .z8/.ulx game")
            if not os.path.isfile(path):
                raise sw.UnknownTask(f"no such game file: {path}", data={"game": path})
        elif task == FILE_TASK:
            raise sw.InvalidParams("task `file` needs the reset option `game` (a path to a .z8/.ulx game)")
        else:
            path = self._scan()[task][variation]
        self.close()
        has_json = os.path.exists(os.path.splitext(path)[0] + ".json")
        infos = textworld.EnvInfos(admissible_commands=True, score=True, max_score=True, won=True, lost=True,
                                   objective=True, policy_commands=has_json, facts=has_json,
                                   extras=["walkthrough"] if has_json else [])
        try:
            self._env = textworld.start(path, request_infos=infos)
            if seed is not None and hasattr(self._env, "seed"):
                self._env.seed(seed)
            self._state = self._env.reset()
        except Exception as e:
            self._env = None
            raise sw.EnvironmentCrashed(f"could not start {path}: {type(e).__name__}: {e}") from None
        st = self._state
        self._walk = list(st.get("extra.walkthrough") or []) if has_json else []
        self._walk_i, self._on_walk = 0, True
        self._exits = _exits(st.get("facts"))
        self._seg, self._seg_names, self._seg_i = [], [], 0
        self._max_score = float(st["max_score"]) if st.get("max_score") is not None else None
        return sw.Reset(clean_intro(st["feedback"]), st.get("objective") or "", max_score=self._max_score,
                        meta={"game": path})

    def step(self, action: str) -> sw.Step:
        if self._env is None:
            raise sw.NoEpisode("no TextWorld episode")
        before = float(self._state.get("score") or 0)
        try:
            self._state, _r, done = self._env.step(action)
        except Exception as e:
            self.close()
            raise sw.EnvironmentCrashed(f"the game engine failed: {type(e).__name__}: {e}") from None
        st = self._state
        if self._on_walk and self._walk_i < len(self._walk) and action.strip() == self._walk[self._walk_i]:
            self._walk_i += 1
        else:
            self._on_walk = False
        if self._seg_i < len(self._seg) and action.strip() == self._seg[self._seg_i]:
            self._seg_i += 1
        score = float(st.get("score") or 0)
        won, lost = bool(st.get("won")), bool(st.get("lost"))
        return sw.Step(clean(st["feedback"]), reward=score - before, score=score, done=bool(done) or won or lost,
                       won=won)

    def admissible_actions(self) -> List[str]:
        if self._env is None:
            raise sw.NoEpisode("no TextWorld episode")
        return list(self._state.get("admissible_commands") or [])

    def expert_action(self) -> sw.Expert:
        """The game's own plan from the current state (`policy_commands`), which adapts when the
        agent leaves the walkthrough; the walkthrough's next command when there is no plan. With
        the subtask the command serves (`command_subtasks` of that plan)."""
        if self._env is None:
            raise sw.NoEpisode("no TextWorld episode")
        plan = self._state.get("policy_commands")
        if plan:
            return sw.Expert(plan[0], self._subtask(list(plan)))
        if self._on_walk and self._walk_i < len(self._walk):
            return sw.Expert(self._walk[self._walk_i], self._subtask(self._walk[self._walk_i:]))
        if plan is None and not self._walk:
            raise sw.NoExpert("this game has no walkthrough (no TextWorld .json beside it)")
        return sw.Expert(None)

    def _subtask(self, plan: List[str]) -> str:
        """The subtask of `plan[0]`. A plan is named once, when it first appears (at reset, or
        when the agent's detour made the game plan anew) and from the room the player is in then;
        while the agent follows it, each command keeps the name it got then."""
        if self._seg[self._seg_i:] != plan:
            self._seg, self._seg_i = plan, 0
            self._seg_names = command_subtasks(plan, _room(self._state.get("facts")), self._exits)
        return self._seg_names[self._seg_i]

    def close(self) -> None:
        if self._env is not None:
            try:
                self._env.close()
            except Exception:
                pass
            self._env = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--games", default=twgames.default_games_dir(), help="games folder (one sub-folder per family)")
    ap.add_argument("--generate", type=int, default=0,
                    help="first make sure N games of each family exist (tw-make, 5-8 s a game)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel tw-make runs for --generate")
    args = ap.parse_args()
    sw.serve(lambda: TextWorld(args.games, args.generate, args.jobs))


if __name__ == "__main__":
    main()
