"""ScienceWorld (the `scienceworld` package) as a Gymnasium-style text environment.

    env = ScienceWorldGym("find-animal", split="test", variation=0)
    obs, info = env.reset()
    obs, reward, terminated, truncated, info = env.step("look around")

Observations and scores match stepwire's ScienceWorld bridge (`bridges/scienceworld`), which
the bundled `models/scienceworld-step-hrl` was trained on: the text the simulator printed, its
`look` and `inventory` views as observation parts, the score out of 100 (won at 100, lost below
0), and an action the simulator does not know reported as `Invalid action: ...` without a move.
`info` carries what `run_episode` reads: `admissible_actions`, `observation_parts`, `score`,
`won`, `invalid_action`, and on reset `task_description`, `episode`, `reset`, `max_score`, `reset_meta`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

UNKNOWN_ACTION = "No known action matches that input."


class ScienceWorldGym:
    def __init__(self, task: str, split: str = "test", variation: int = 0, simplifications: str = "",
                 step_limit: Optional[int] = None) -> None:
        from scienceworld import ScienceWorldEnv

        if split not in ("train", "dev", "test"):
            raise ValueError(f"split must be train, dev or test, not {split!r}")
        self.task, self.split, self.variation = task, split, variation
        self.simplifications = simplifications
        self.step_limit = step_limit
        # Our own step limit (below) decides truncation; the package's would end episodes silently.
        self._env: Any = ScienceWorldEnv("", envStepLimit=10**9)
        self._score = 0
        self._steps = 0

    def _real_variation(self) -> int:
        self._env.load(self.task, 0, "", False)
        variations = {"train": self._env.get_variations_train, "dev": self._env.get_variations_dev,
                      "test": self._env.get_variations_test}[self.split]()
        if not 0 <= self.variation < len(variations):
            raise ValueError(f"{self.task} has {len(variations)} {self.split} variations; {self.variation} is out of range")
        return variations[self.variation]

    def _parts(self) -> Dict[str, str]:
        return {"look": self._env.look(), "inventory": self._env.inventory()}

    def _info(self, **extra: Any) -> Dict[str, Any]:
        return {"admissible_actions": self._env.get_valid_action_object_combinations(),
                "observation_parts": self._parts(), "score": self._score, "won": self._score >= 100, **extra}

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None) -> Tuple[str, Dict[str, Any]]:
        real = self._real_variation()
        # With its gold path generated, as the bridge loads it: generating it draws from the
        # simulator's random numbers, so the world (object order, admissible actions) is then the
        # very one `stepwire run --env scienceworld` plays.
        self._env.load(self.task, real, self.simplifications, True)
        self._env.server.reset()
        text = self._env.server.step("look around")  # what the package's reset() returns
        self._score = int(round(100 * self._env.server.getScore()))
        self._steps = 0
        reset: Dict[str, Any] = {"task": self.task, "split": self.split, "variation": self.variation}
        if seed is not None:
            reset["seed"] = seed
        return text, self._info(
            task_description=self._env.get_task_description(),
            episode={"env": "scienceworld", "task": self.task, "split": self.split, "variation": self.variation},
            reset=reset, max_score=100,
            reset_meta={"variationIdx": real, "simplifications": self._env.get_simplifications_used()})

    def step(self, action: str) -> Tuple[str, float, bool, bool, Dict[str, Any]]:
        text = self._env.server.step(action)
        if text.strip() == UNKNOWN_ACTION:  # the world did not change (the bridge's InvalidAction)
            return (f"Invalid action: {UNKNOWN_ACTION}", 0.0, False, False,
                    {**self._info(), "observation_parts": {}, "invalid_action": True})
        self._steps += 1
        score = int(round(100 * self._env.server.getScore()))
        reward, self._score = score - self._score, score
        terminated = bool(self._env.server.getCompleted()) or score >= 100 or score < 0
        truncated = not terminated and self.step_limit is not None and self._steps >= self.step_limit
        return text, float(reward), terminated, truncated, self._info()

    def close(self) -> None:
        if self._env is not None:
            env, self._env = self._env, None
            env.close()
            env.close = lambda: None  # the package's __del__ would close the closed gateway again

    def __enter__(self) -> "ScienceWorldGym":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
