"""A tiny garden game served over the stepwire environment plane: `python bridge.py`."""
import os, random, sys  # noqa: E401

try:
    import stepwire_bridge as sw
except ImportError:  # not installed: use the SDK from this checkout
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bridges", "python"))
    import stepwire_bridge as sw

PLANTS = ["rose", "tulip", "fern", "basil", "mint", "sage"]  # train uses 0-3, test 4-5
SPLITS = {"train": 4, "test": 2}
TASKS = {  # task id -> (description, gold plan); {p} is the variation's plant
    "water-plant": ("Water the {p}.", ["take can", "fill can", "water {p}"]),
    "plant-seed": ("Plant a {p} seed.", ["take trowel", "dig hole", "take {p} seed", "plant {p} seed"]),
    "pick-flower": ("Put a cut {p} in the vase.", ["take shears", "cut {p}", "put {p} in vase"]),
}
MAX_STEPS = 25


class Garden(sw.Environment):
    name, version, seeded_reset, observation_parts = "garden", "1.0.0", True, ["inventory"]

    def tasks(self):
        return [sw.Task(t, SPLITS, d.format(p="<plant>")) for t, (d, _) in TASKS.items()]

    def reset(self, task, split, variation, seed, options):
        self.plant = PLANTS[variation + (4 if split == "test" else 0)]
        desc, plan = TASKS[task]
        self.plan = [a.format(p=self.plant) for a in plan]
        self.ground = ["can", "trowel", "shears", "rake", "pebble", f"{self.plant} seed"]
        random.Random(seed).shuffle(self.ground)  # the seed decides the layout
        self.inventory, self.performed, self.steps = [], set(), 0
        return sw.Reset(self._obs(self._look()), desc.format(p=self.plant), max_score=len(self.plan))

    def _look(self):
        return f"You are in a garden with a tap, a vase and a {self.plant}. On the ground: {', '.join(self.ground) or 'nothing'}."

    def _obs(self, text):
        return sw.Observation(text, {"inventory": f"You carry: {', '.join(self.inventory) or 'nothing'}."})

    def _satisfied(self, i):
        a = self.plan[i]
        return a[5:] in self.inventory if a.startswith("take ") else a in self.performed

    def _score(self):
        return sum(self._satisfied(i) for i in range(len(self.plan)))

    def _next_verb(self):  # the next non-`take` plan step, when all steps before it are done
        i = next((i for i in range(len(self.plan)) if not self._satisfied(i)), None)
        return self.plan[i] if i is not None and not self.plan[i].startswith("take ") else None

    def admissible_actions(self):
        return ["look", "inventory"] + [f"take {t}" for t in self.ground] + [a for a in [self._next_verb()] if a]

    def expert_action(self):
        return next((a for i, a in enumerate(self.plan) if not self._satisfied(i)), None)

    def step(self, action):
        before, self.steps = self._score(), self.steps + 1
        if action in ("look", "inventory"):
            text = self._look() if action == "look" else "You check your pockets."
        elif action.startswith("take ") and action[5:] in self.ground:
            self.ground.remove(action[5:])
            self.inventory.append(action[5:])
            text = f"You take the {action[5:]}."
        elif action in self.plan and not action.startswith("take "):
            ok = action == self._next_verb()
            self.performed |= {action} if ok else set()
            text = f"Done: {action}." if ok else "You can't do that yet."
        else:
            raise sw.InvalidAction(f"I don't know how to {action!r} here")
        score = self._score()
        won, out_of_time = score == len(self.plan), self.steps >= MAX_STEPS
        return sw.Step(self._obs(text), score - before, score, won or out_of_time, won, out_of_time and not won)


if __name__ == "__main__":
    sw.serve(Garden)
