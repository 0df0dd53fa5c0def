"""counter: the conformance environment of tests/sdk-cases/cases.json (its header specifies it);
examples/rust-bridge/src/bin/counter_bridge.rs is the same game on the Rust SDK."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import stepwire_bridge as sw  # noqa: E402


class Counter(sw.Environment):
    name = "counter"
    reset_options = ["start"]
    seeded_reset = True

    def tasks(self):
        return [sw.Task("count", {"train": 3, "test": 1, "empty": 0})]

    def reset(self, task, split, variation, seed, options):
        start = options.get("start", 0)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise sw.InvalidParams("the reset option `start` must be a whole number")
        self.n, self.target = start, start + variation + 2
        return sw.Reset(f"count {self.n}", f"count to {self.target}", max_score=float(self.target),
                        episode_id=f"count-{variation}")

    def step(self, action):
        if action == "inc":
            self.n += 1
        elif action == "sleep":
            time.sleep(2)
        elif action == "crash":
            raise sw.EnvironmentCrashed("crashing on purpose")
        else:
            raise sw.InvalidAction(f"`{action}`: the actions are inc, sleep and crash")
        won = self.n >= self.target
        return sw.Step(f"count {self.n}", reward=1.0 if action == "inc" else 0.0, score=float(self.n),
                       done=won, won=won)

    def admissible_actions(self):
        return ["inc", "sleep", "crash"]

    def expert_action(self):
        return sw.Expert("inc", subtask="count up")


if __name__ == "__main__":
    sw.serve(Counter)
