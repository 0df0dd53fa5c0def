"""An offline-RL step runs on expert + rollout recordings and changes the policy's weights."""

import pytest
from conftest import EXPERT, ROLLOUTS, TINY, cli

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


def test_rl_steps_change_weights(work, bc_run):
    from stepwire_train.model import load_model

    init = bc_run[0]
    out = work / "rl"
    tiny = TINY[TINY.index("--threads"):]  # the run options; the model comes from --init
    res = cli("rl", "--init", init, "--expert", EXPERT, "--rollouts", ROLLOUTS, "--out", out,
              "--steps", "3", "--eval-every", "3", *tiny)
    assert res["steps"] == 3 and res["expert_episodes"] == 16 and res["rollout_episodes"] == 8
    for k in ("actor_loss", "q_loss", "v_loss"):
        assert res[k] == res[k] and res[k] >= 0  # finite, not NaN
    before, after = load_model(init / "hf"), load_model(out / "hf")
    with torch.no_grad():
        diff = sum(float((a - b).abs().sum()) for a, b in
                   zip(before.parameters(), after.parameters()))
    assert diff > 0
    assert (out / "critic.pt").is_file() and (out / "loss.png").is_file()


def test_rewards_and_terminals():
    from stepwire_train.manifest import load_manifest
    from stepwire_train.records import load_episodes
    from stepwire_train.rl import transitions_of

    m = load_manifest(EXPERT.parents[2] / "manifests" / "compact.toml")
    eps, _ = load_episodes([EXPERT])
    ts = transitions_of(eps[0], m, 0, "env", 1.0, 0.0)
    lows = [t for t in ts if t.level == 1]
    assert lows[-1].reward == 1.0 and lows[-1].next_prompt is None   # the winning step
    assert all(t.next_prompt for t in lows[:-1])
    highs = [t for t in ts if t.level == 0]
    assert highs[-1].next_prompt is None and sum(t.reward for t in highs) == 1.0
    succ = transitions_of(eps[0], m, 0, "success", 1.0, 0.0)
    assert [t.reward for t in succ] == [t.reward for t in ts]
