"""End to end with the runtime (skipped without a built `stepwire`): the exported policy plays
lockbox, and every prompt the runtime tokenized (usage.promptTokens, cachedTokens in the new
recording) has exactly the token count of our rendering + tokenization of the recorded state:
training and serving build the same prompts."""

import subprocess

import pytest
from conftest import REPO, stepwire_binary

pytest.importorskip("torch")
pytestmark = pytest.mark.torch


def test_runtime_prompts_match_training_prompts(exported, work):
    exe = stepwire_binary()
    if exe is None:
        pytest.skip("needs target/{debug,release}/stepwire and lockbox-bridge "
                    "(cargo build -p stepwire-runtime -p stepwire-example-bridge)")
    from stepwire_train.records import load_episodes
    from stepwire_train.render import render_state
    from stepwire_train.tokenizer import encode_prompts, load_tokenizer
    from stepwire_train.manifest import load_manifest

    policy, _ = exported
    rec = work / "played.jsonl"
    r = subprocess.run([str(exe), "run", "--env", "lockbox", "--policy", str(policy),
                        "--episodes", "2", "--max-steps", "6", "--one-session",
                        "--record", str(rec)], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    m, tok = load_manifest(policy), load_tokenizer(policy)
    prefix = {role: len(encode_prompts(tok, [m.template(role).prefix()])[0])
              for role in ("high", "low", "progress")}
    eps, _ = load_episodes([rec])
    seen = 0
    for ep in eps:
        for t in ep.transitions:
            n = len(encode_prompts(tok, [render_state(m, t["level"], t["state"])])[0])
            assert t["usage"]["promptTokens"] == n, (t["level"], t["step"])
            assert t["usage"]["cachedTokens"] in (0, prefix[t["level"]])
            seen += 1
    assert seen >= 6
