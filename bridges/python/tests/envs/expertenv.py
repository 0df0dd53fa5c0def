"""A test environment whose expert answers whatever the reset option `advice` names: a subtask
with its action, a plain str, no action, or a value of the wrong type."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import stepwire_bridge as sw  # noqa: E402

ADVICE = {
    "expert": lambda: sw.Expert("take key", subtask="get the key"),
    "expert-no-subtask": lambda: sw.Expert("take key"),
    "expert-none": lambda: sw.Expert(None),
    "str": lambda: "take key",
    "none": lambda: None,
    "expert-int-action": lambda: sw.Expert(3),
    "expert-int-subtask": lambda: sw.Expert("take key", subtask=7),
    "int": lambda: 3,
    "dict": lambda: {"action": "take key", "subtask": "get the key"},
}


class ExpertEnv(sw.Environment):
    name = "expertenv"
    reset_options = ["advice"]

    def tasks(self):
        return [sw.Task("box", {"train": 1})]

    def reset(self, task, split, variation, seed, options):
        self.advice = options.get("advice", "expert")
        return sw.Reset("A box, a key.", "Open the box.")

    def step(self, action):
        return sw.Step(f"You {action}.")

    def expert_action(self):
        return ADVICE[self.advice]()


if __name__ == "__main__":
    sw.serve(ExpertEnv)
