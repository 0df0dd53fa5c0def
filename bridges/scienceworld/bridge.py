#!/usr/bin/env python3
"""ScienceWorld over the stepwire environment plane.

    .venv/bin/python bridges/scienceworld/bridge.py [--jvm-heap 2g] [--no-expert] [--cache-dir DIR]

Tasks are the package's 30 tasks (ids as `scienceworld` names them: `boil`, `melt`, ...) with its
own train / dev / test variation splits; `variation` is an index into the split's list. See
README.md beside this file for the details (expert, invalid actions, the JVM's lifetime).
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

import stepwire_bridge as sw

log = logging.getLogger("stepwire_bridge.scienceworld")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNKNOWN_ACTION = "No known action matches that input."
AMBIGUOUS = "Ambiguous request"
# An ambiguity prompt's options: "0:\tmove pea seed (in seed jar, in inventory, ...) to flower pot 1 (in greenhouse)"
_OPTION = re.compile(r"^(\d+):\t(.*)$", re.M)
# A move option whose object is already directly in the destination: "move X (in C, ...) to C ..."
_MOVE = re.compile(r"^move .+? \(in ([^,)]+)[^)]*\) to (.+?)(?: \(in [^)]*\))?$")
# Gold-path generations per reset: a generated path that did not reach 100 is made anew.
GOLD_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int = signal.SIGKILL) -> None:
    """prctl(PR_SET_PDEATHSIG): the kernel sends `sig` to this process when the thread that
    started it ends. Used in the JVM's preexec_fn: the JVM is always started from the bridge's
    request worker thread, which lives as long as the bridge."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except Exception:  # not Linux: the other guards (stdin EOF, atexit) still apply
        pass


class JVM:
    """The ScienceWorld JVM: a py4j GatewayServer with a capped heap, in its own process group,
    killed with its parent thread (PDEATHSIG), on close, at exit and on SIGTERM/SIGHUP."""

    _live: List["JVM"] = []

    def __init__(self, heap: str) -> None:
        from py4j.java_gateway import find_jar_path
        from scienceworld.constants import BASEPATH, JAR_PATH

        java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else "java"
        cmd = [java, f"-Xmx{heap}", "-classpath", os.pathsep.join((find_jar_path(), JAR_PATH)),
               "py4j.GatewayServer", "--die-on-broken-pipe", "0"]

        def preexec() -> None:
            os.setpgid(0, 0)  # its own group: a Ctrl-C to the bridge's group is ours to handle
            _die_with_parent(signal.SIGKILL)

        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                                     cwd=BASEPATH, preexec_fn=preexec)
        JVM._live.append(self)
        self._gateway = None
        self.port: Optional[int] = None

    def connect(self):
        """Wait for the port line, connect py4j; returns the gateway."""
        if self._gateway is None:
            from py4j.java_gateway import GatewayParameters, JavaGateway

            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise sw.EnvironmentCrashed(f"the ScienceWorld JVM did not start (exit code {self.proc.poll()})")
            self.port = int(line)
            threading.Thread(target=self._drain, daemon=True, name="jvm-stdout").start()
            self._gateway = JavaGateway(gateway_parameters=GatewayParameters(auto_field=True, port=self.port),
                                        java_process=self.proc)
        return self._gateway

    def _drain(self) -> None:  # the JVM's stdout is a pipe to us, never the protocol stream
        for line in self.proc.stdout:  # type: ignore[union-attr]
            log.debug("jvm: %s", line.decode(errors="replace").rstrip())

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        try:
            if self._gateway is not None:
                self._gateway.close(keep_callback_server=False, close_callback_server_connections=True)
        except Exception:
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
        try:
            self.proc.wait(10)
        except Exception:
            pass
        if self in JVM._live:
            JVM._live.remove(self)

    @classmethod
    def close_all(cls) -> None:
        for j in list(cls._live):
            j.close()


def _prompt_options(text: str) -> Optional[List[str]]:
    """The options of an open ambiguity prompt (index = the number to answer), else None."""
    if not text.lstrip().startswith(AMBIGUOUS):
        return None
    return [m.group(2).strip() for m in _OPTION.finditer(text)] or None


def _pick_option(options: List[str], wanted: int) -> str:
    """The answer to an ambiguity prompt, given the number the gold path played (`wanted`).

    The gold generator answers every prompt with "0" (ScienceWorld's `TaskParametric.runAction`
    picks the first option), and the option order is not stable between runs of the simulator
    (the options are often the very same text, e.g. two "pea seed (in seed jar ...)"), so the
    number says little about which object was meant. What the gold path means is "do this
    action": an option that moves an object into the container it is already in does nothing
    (seen in `mendelian-genetics-*`: "move pea seed (in seed jar, ...) to seed jar"), so it is
    never picked when another option exists; among the rest the gold number wins when it is one
    of them (it is right whenever the order did not change), else the first."""
    def noop(option: str) -> bool:
        m = _MOVE.match(option)
        return bool(m) and m.group(1).strip() == m.group(2).strip()

    useful = [k for k, o in enumerate(options) if not noop(o)] or list(range(len(options)))
    return str(wanted if wanted in useful else useful[0])


# -- the expert's subtasks -----------------------------------------------------------------------
# ScienceWorld's locations, as gold paths name them ("go to art studio"); an object phrase that
# ends with " in <location>" or " in inventory" is shortened by it in a subtask's name.
LOCATIONS = ("kitchen", "bathroom", "workshop", "art studio", "greenhouse", "outside", "hallway",
             "living room", "bedroom", "foundry")
_WHERE = re.compile(r" (?:in|on) (?:inventory|%s)$" % "|".join(LOCATIONS))
# Actions that only look: they join the subtask of the action after them.
_LOOK = re.compile(r"^(?:look around|look at .+|look in .+|inventory|read .+|examine .+|task)$")
_WAIT = re.compile(r"^wait\d*(?: \d+)?$")
_NAV = re.compile(r"^(?:go to|teleport to|open door to) (.+)$")
# (pattern, name template): the first that matches names the action's subtask.
_ACTS = [
    (re.compile(r"^pick up (.+)$"), "pick up {0}"),
    (re.compile(r"^put down (.+)$"), "put down {0}"),
    (re.compile(r"^focus on (.+)$"), "focus on {0}"),
    (re.compile(r"^move (.+) to (.+?)$"), "move {0} to {1}"),
    (re.compile(r"^pour (.+) into (.+)$"), "pour {0} into {1}"),
    (re.compile(r"^pour (.+) in (.+?)$"), "pour {0} into {1}"),
    (re.compile(r"^dunk (.+) into (.+)$"), "dunk {0} into {1}"),
    (re.compile(r"^dunk (.+) in (.+?)$"), "dunk {0} into {1}"),
    (re.compile(r"^use (.+?) on (.+)$"), "use {0} on {1}"),
    (re.compile(r"^connect (.+?) to (.+)$"), "connect {0} to {1}"),
    (re.compile(r"^(activate|deactivate|disconnect|open|close|mix|eat|flush|drop|use) (.+)$"), "{0} {1}"),
]


def _the(thing: str) -> str:
    """An object phrase of a gold action as it reads in a subtask: without where it is
    ("thermometer in inventory", "egg turtle in outside"), after "the"."""
    thing = _WHERE.sub("", thing.strip()) or thing.strip()
    return thing if thing.startswith("the ") else f"the {thing}"


def _act_name(action: str) -> str:
    for pattern, template in _ACTS:
        m = pattern.match(action)
        if m:
            groups = list(m.groups())
            if template.startswith("{0} "):  # a verb, then its object
                return f"{groups[0]} {_the(groups[1])}"
            return template.format(*(_the(g) for g in groups))
    return action


def gold_subtasks(gold: List[str]) -> List[str]:
    """The subtask of every action of a gold path (same length), by rules on the path alone (so
    the subtask of each expert action is fixed at reset; see README.md, Expert's subtasks):

    * a run of navigation (`go to X`, `open door to X`, `teleport to X`) is one subtask,
      "go to the <room the run ends in>" ("go outside");
    * `wait`/`wait1` is "wait" (a run of them is one subtask);
    * every other action is its own subtask, named by the action and its objects: "pick up the
      thermometer", "move the metal pot to the stove", "use the thermometer on the substance in
      metal pot";
    * an answer to an ambiguity prompt (a number) belongs to the subtask of the action it answers;
    * actions that only look (`look around`, `look at`, `examine`, `read`, `inventory`) belong to
      the subtask that follows them (to the one before at the end of the path).

    Consecutive actions with the same name form one subtask (two runs of `wait1` split by a
    `look around` are one "wait")."""
    names = sw.SubtaskNames(len(gold))
    for i, raw in enumerate(gold):
        action = " ".join(raw.strip().split())
        nav = _NAV.match(action)
        if action.isdigit():  # answers the action before it
            names.answer(i)
        elif _LOOK.match(action):
            names.look(i)
        elif nav:  # a run of navigation (looking around on the way included), named by where it goes
            place = nav.group(1).strip()
            if not action.startswith("open door to "):
                names.move(i, "go outside" if place == "outside" else f"go to the {place}")
            else:  # opening a door goes nowhere yet: the run keeps its name
                names.move(i, names.run or f"open the door to {place}")
        else:
            names.act(i, "wait" if _WAIT.match(action) else _act_name(action))
    return names.names()


def _make_env(jvm: JVM):
    """A `ScienceWorldEnv` bound to our JVM (the package's __init__ starts its own, uncapped)."""
    import tempfile

    from scienceworld import ScienceWorldEnv

    class _Env(ScienceWorldEnv):
        def __init__(self) -> None:  # noqa: D401 - mirrors the package's __init__ minus the launch
            self._gateway = jvm.connect()
            self.server = self._gateway.jvm.scienceworld.runtime.pythonapi.PythonInterface()
            self.lastStepScore = 0
            self.taskName = None
            self.envStepLimit = 10**9
            self.clear_run_histories()
            self.goldPathGenerated = False
            self._obj_tree_tempdir = tempfile.TemporaryDirectory()

        def close(self) -> None:
            jvm.close()

        def __del__(self) -> None:
            pass

    return _Env()


class ScienceWorld(sw.Environment):
    name = "scienceworld"
    seeded_reset = True
    observation_parts = ["look", "inventory"]
    reset_options = ["simplifications", "expertMode", "stepLimit"]
    default_split = "train"

    def __init__(self, heap: str = "2g", expert: bool = True, cache_dir: Optional[str] = None) -> None:
        from importlib.metadata import version

        self.heap = heap
        self.expert_enabled = expert
        self.expert_action_supported = expert
        self.version = "scienceworld " + version("scienceworld")
        self.cache_path = os.path.join(cache_dir or os.path.join(ROOT, ".cache", "scienceworld"),
                                       f"tasks-{version('scienceworld')}.json")
        self._jvm: Optional[JVM] = JVM(heap)  # started now (in the worker thread), connected on first use
        self._env = None
        self._splits: Optional[Dict[str, Dict[str, List[int]]]] = None
        self._loaded = False
        self._gold: List[str] = []
        self._gold_subtasks: List[str] = []  # the subtask of each gold action (gold_subtasks)
        self._gold_i = 0
        self._text = ""  # the last observation text (is an ambiguity prompt open?)
        self._deviated = False
        self._strict = False
        self._score = 0
        self._steps = 0
        self._step_limit: Optional[int] = None

    # -- the JVM ---------------------------------------------------------------------------
    def _sw(self):
        if self._env is None or self._jvm is None or not self._jvm.alive():
            if self._jvm is not None and not self._jvm.alive():
                log.warning("the ScienceWorld JVM is gone; starting a new one")
                self._jvm.close()
                self._jvm = None
            if self._jvm is None:
                self._jvm = JVM(self.heap)
            with self.progress("Starting the ScienceWorld JVM"):
                self._env = _make_env(self._jvm)
        return self._env

    def _call(self, fn, *args):
        """A JVM call; a dead JVM (or a broken py4j link) becomes EnvironmentCrashed."""
        from py4j.protocol import Py4JNetworkError

        try:
            return fn(*args)
        except Py4JNetworkError as e:
            self._loaded = False
            if self._jvm is not None:
                self._jvm.close()
            self._env = None
            raise sw.EnvironmentCrashed(f"the ScienceWorld JVM failed: {e}") from None

    # -- tasks -----------------------------------------------------------------------------
    def _task_splits(self) -> Dict[str, Dict[str, List[int]]]:
        """{task: {train: [...], dev: [...], test: [...]}}: costs one load per task (about 5 s for
        all 30), so it is cached on disk per package version."""
        if self._splits is not None:
            return self._splits
        try:
            with open(self.cache_path) as f:
                self._splits = json.load(f)
                return self._splits  # type: ignore[return-value]
        except (OSError, ValueError):
            pass
        env = self._sw()
        out: Dict[str, Dict[str, List[int]]] = {}
        with self.progress("Listing ScienceWorld variations") as p:
            names = list(self._call(env.get_task_names))
            for i, name in enumerate(names):
                self._call(env.server.load, name, 0, "", False)
                out[name] = {"train": list(self._call(env.get_variations_train)),
                             "dev": list(self._call(env.get_variations_dev)),
                             "test": list(self._call(env.get_variations_test))}
                if p is not None:
                    p.report(name, int(100 * (i + 1) / len(names)))
        self._loaded = False
        self._splits = out
        try:
            os.makedirs(os.path.dirname(self.cache_path), exist_ok=True)
            tmp = self.cache_path + f".{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump(out, f)
            os.replace(tmp, self.cache_path)
        except OSError as e:
            log.warning("could not cache the task list: %s", e)
        return out

    def tasks(self) -> List[sw.Task]:
        from scienceworld.constants import TASKS

        info = {t["task_name"].replace("mendellian", "mendelian"): t for t in TASKS}
        tasks = []
        for name, splits in self._task_splits().items():
            t = info.get(name)
            desc = f"{t['topic']}: {t['task']} (task {t['task_id']})" if t else None
            tasks.append(sw.Task(name, {k: len(v) for k, v in splits.items()}, desc))
        return tasks

    # -- episodes --------------------------------------------------------------------------
    def reset(self, task, split, variation, seed, options) -> sw.Reset:
        simpl = options.get("simplifications", "")
        if isinstance(simpl, list):
            simpl = ",".join(str(s) for s in simpl)
        if not isinstance(simpl, str):
            raise sw.InvalidParams("`simplifications` must be a string like \"easy\" or a list of names")
        mode = options.get("expertMode", "lenient")
        if mode not in ("lenient", "strict"):
            raise sw.InvalidParams("`expertMode` must be \"lenient\" or \"strict\"")
        limit = options.get("stepLimit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
            raise sw.InvalidParams("`stepLimit` must be a positive integer")
        real = self._task_splits()[task][split][variation]
        env = self._sw()
        self._loaded = False
        gold_score = None
        for _ in range(GOLD_ATTEMPTS if self.expert_enabled else 1):
            try:
                self._call(env.load, task, real, simpl, self.expert_enabled)
            except ValueError as e:  # the package's own checks (unknown simplification...)
                raise sw.InvalidParams(str(e)) from None
            if not self.expert_enabled:
                break
            # The gold path is made by playing the simulator, and load() leaves it where that
            # run ended: its score says whether the gold path won. The generator can fail
            # (mendelian-genetics-*, about 1 load in 20: too few plants grow, it concludes the
            # wrong answer and focuses on the wrong box, so replaying it loses at -100);
            # then make a new one (a load costs 1-3 s; all 30 tasks' first variations win at once).
            gold_score = int(round(100 * self._call(env.server.getScore)))
            if gold_score >= 100:
                break
            log.info("%s variation %s: the generated gold path ends at score %s; generating another",
                     task, real, gold_score)
        self._gold = [str(a) for a in self._call(env.server.getGoldActionSequence)] if self.expert_enabled else []
        self._gold_subtasks = gold_subtasks(self._gold)
        self._call(env.server.reset)
        text = self._call(env.server.step, "look around")  # what the package's reset() returns
        self._loaded = True
        self._gold_i, self._deviated, self._strict = 0, False, mode == "strict"
        self._text = text
        self._score = int(round(100 * self._call(env.server.getScore)))
        self._steps, self._step_limit = 0, limit
        desc = self._call(env.server.getTaskDescription)
        return sw.Reset(self._obs(text), desc, max_score=100,
                        meta={"variationIdx": real, "simplifications": self._call(env.get_simplifications_used),
                              "goldLength": len(self._gold), "goldScore": gold_score})

    def _obs(self, text: str) -> sw.Observation:
        env = self._env
        # While ScienceWorld waits for the number that resolves an ambiguous action, any other
        # command (free actions included) cancels the question, and the gold path's next "0"
        # then fails: keep the previous parts instead of asking.
        if text.lstrip().startswith("Ambiguous request"):
            return sw.Observation(text, dict(getattr(self, "_parts", {})))
        # Free actions: no simulated time passes, about 1 ms each (building the valid-action
        # list, which the package's step() also does, costs 100s of ms: never done here).
        self._parts = {"look": self._call(env.server.freeActionLook),
                       "inventory": self._call(env.server.freeActionInventory)}
        return sw.Observation(text, dict(self._parts))

    def step(self, action: str) -> sw.Step:
        env = self._env
        if env is None or not self._loaded:
            raise sw.NoEpisode("no ScienceWorld episode loaded")
        expected, gold_next, _ = self._expert_plan() if self.expert_enabled else (None, self._gold_i, None)
        text = self._call(env.server.step, action)  # the bare Java step: no valid-action list
        self._text = text
        if text.strip() == UNKNOWN_ACTION:
            if expected is not None and action == expected:
                # A gold action the simulator refuses (the world drifted from the one the gold
                # path was made in): it is spent, else the expert would propose it forever.
                self._gold_i = gold_next
            raise sw.InvalidAction(UNKNOWN_ACTION, data={"observation": text})
        self._steps += 1
        score = int(round(100 * self._call(env.server.getScore)))
        completed = bool(self._call(env.server.getCompleted))
        reward, self._score = score - self._score, score
        won = score >= 100
        done = completed or won or score < 0
        truncated = not done and self._step_limit is not None and self._steps >= self._step_limit
        if self.expert_enabled:
            if expected is not None and action == expected:
                self._gold_i = gold_next
            else:
                self._deviated = True
        return sw.Step(self._obs(text), reward=reward, score=score, done=done or truncated, won=won,
                       truncated=truncated)

    def admissible_actions(self) -> List[str]:
        env = self._env
        if env is None or not self._loaded:
            raise sw.NoEpisode("no ScienceWorld episode loaded")
        return [str(a) for a in self._call(env.server.getValidActionObjectCombinations)]

    def expert_action(self) -> sw.Expert:
        if not self.expert_enabled:
            raise sw.NoExpert("the expert is off (--no-expert)")
        if self._deviated and self._strict:
            raise sw.NoExpert("the agent left the gold path (expertMode strict)")
        action, _, at = self._expert_plan()
        if action is None or at is None or not self._gold_subtasks:
            return sw.Expert(action)
        return sw.Expert(action, self._gold_subtasks[min(at, len(self._gold_subtasks) - 1)])

    def _expert_plan(self) -> Tuple[Optional[str], int, Optional[int]]:
        """The expert's next action, the gold index once it is played, and the gold index whose
        subtask the action serves (`gold_subtasks`: the action's own; for an answer to a prompt
        the gold path did not expect, the gold action before it, which the answer plays).

        Gold paths contain the answers to the ambiguity prompts their generator met ("0"), but
        on replay the simulator's randomness (mendelian genetics: which seeds grow where) and its
        option order differ, so an action may be ambiguous now and not then, or the reverse.
        While a prompt is open any other command is swallowed ("Unknown action", the prompt is
        cancelled and the command is not run), and a number without a prompt is refused. So:
        * a gold number while no prompt is open is skipped;
        * an open prompt is always answered (`_pick_option`), with the gold number when one
          comes next (it is then spent), else without moving on in the gold path (the gold
          action was unambiguous when the path was made: the answer plays that action).
        Gold actions the simulator refuses are skipped too (see `step`). So the expert never
        proposes a refused action twice and always gets to the end of the gold path (`null`):
        when the state has drifted too far, the rest may just be refused one by one."""
        gold, i = self._gold, self._gold_i
        options = _prompt_options(self._text)
        if options is None:
            while i < len(gold) and gold[i].strip().isdigit():
                i += 1
            return (gold[i], i + 1, i) if i < len(gold) else (None, i, None)
        if i < len(gold) and gold[i].strip().isdigit():
            return _pick_option(options, int(gold[i])), i + 1, i
        return (_pick_option(options, 0), i, max(i - 1, 0)) if i < len(gold) else (None, i, None)

    def close(self) -> None:
        self._loaded = False
        self._env = None
        if self._jvm is not None:
            self._jvm.close()
            self._jvm = None


def _on_signal(signum, _frame) -> None:
    JVM.close_all()
    os._exit(128 + signum)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jvm-heap", default=os.environ.get("STEPWIRE_SCIENCEWORLD_HEAP", "2g"),
                    help="the JVM's -Xmx (default 2g; env STEPWIRE_SCIENCEWORLD_HEAP)")
    ap.add_argument("--no-expert", action="store_true",
                    help="skip gold-path generation at reset (faster resets; no env/expertAction)")
    ap.add_argument("--cache-dir", default=None, help="where the task/split list is cached (default .cache/scienceworld)")
    args = ap.parse_args()
    # No PDEATHSIG for the bridge itself: it would fire when the *thread* that spawned us ends
    # (a host's short-lived pool thread, say). When the host dies our stdin closes: serve()
    # returns and the JVM is closed below.
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, _on_signal)
    atexit.register(JVM.close_all)
    code = sw.serve(lambda: ScienceWorld(args.jvm_heap, not args.no_expert, args.cache_dir), exit=False)
    JVM.close_all()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
