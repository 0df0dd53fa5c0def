"""A test environment that misbehaves on request (slow steps, stray prints, exceptions)."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import stepwire_bridge as sw  # noqa: E402

sw.guard_stdio()
print("import-time noise on stdout")  # must not reach the protocol stream


class TestEnv(sw.Environment):
    name = "testenv"
    reset_options = ["difficulty"]
    observation_parts = ["echo"]

    def __init__(self):
        print("constructor noise on stdout")
        os.write(1, b"fd-level noise on fd 1\n")
        self.log_of_steps = []

    def tasks(self):
        return [
            sw.Task("count", {"train": 3, "test": 1}, "Count to three."),
            sw.Task("empty", {"train": 0}),
            sw.Task("nodefault", [sw.Split("dev", 2)]),
        ]

    def reset(self, task, split, variation, seed, options):
        self.n = 0
        self.last = dict(task=task, split=split, variation=variation, seed=seed, options=options)
        return sw.Reset(sw.Observation("start", {"echo": repr(self.last)}), f"{task} {split} {variation}", max_score=3)

    def step(self, action):
        self.log_of_steps.append(action)
        verb, _, arg = action.partition(":")
        if verb == "sleep":
            time.sleep(float(arg))
        elif verb == "announced-sleep":  # tells the client (by $/logMessage) it has started
            self.log("started")
            time.sleep(float(arg))
        elif verb == "coop-sleep":
            self.log("started")
            end = time.time() + float(arg)
            while time.time() < end:
                if self.is_cancelled():
                    raise sw.RequestCancelled("stopped early")
                time.sleep(0.01)
        elif verb == "boom":
            raise RuntimeError("kaboom")
        elif verb == "exit":  # an environment that ends the process itself
            sys.exit(int(arg))
        elif verb == "interrupt":
            raise KeyboardInterrupt
        elif verb == "crash":
            raise sw.EnvironmentCrashed("engine died")
        elif verb == "invalid":
            raise sw.InvalidAction(f"no such action {arg!r}")
        elif verb == "nan":
            return sw.Step("nan", reward=float("nan"))
        elif verb == "badtype":
            return "not a Step"
        elif verb == "print":
            print("stray print from step")
            sys.stdout.flush()
            os.write(1, b"stray fd write from step\n")
        elif verb == "log":
            self.log(arg, level="warn", data={"n": self.n})
        elif verb == "progress":
            with self.progress("working", "half") as p:
                p.report("halfway", 50)
        elif verb == "big":
            return sw.Step("x" * int(arg))
        elif verb == "surrogate":  # text no UTF-8 can carry, as from a surrogateescape-decoded name
            return sw.Step("file-\udc80")
        elif verb == "history":
            return sw.Step(",".join(self.log_of_steps))
        self.n += 1
        done = verb == "finish" or self.n >= 3
        return sw.Step(sw.Observation(action, {"echo": action}), reward=1, score=self.n, done=done, won=done)


if __name__ == "__main__":
    limit = int(os.environ.get("TESTENV_MAX_MESSAGE_SIZE", str(sw.DEFAULT_MAX_MESSAGE_SIZE)))
    sw.serve(TestEnv, max_message_size=limit)
