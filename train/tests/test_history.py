"""The full-history baseline's prompts and the tokens-per-step comparison on real recordings."""

from conftest import EXPERT, REPO, ROLLOUTS, cli

from stepwire_train.history import full_history_prompts, history_append, tokens_per_step
from stepwire_train.manifest import load_manifest
from stepwire_train.records import load_episodes
from stepwire_train.tokenizer import load_tokenizer


def test_history_entries_match_the_runtimes():
    # The same case as sdk/src/rules.rs `history_keeps_every_action_and_result_in_order`.
    h = history_append("", " go to desk 1", "You arrive at desk 1.\n")
    h = history_append(h, "take mug 1 from desk 1", "You pick up the mug 1 from the desk 1.")
    assert h == ("> go to desk 1\nYou arrive at desk 1.\n> take mug 1 from desk 1\n"
                 "You pick up the mug 1 from the desk 1.")


def test_full_history_prompt_holds_every_earlier_step():
    full = load_manifest(REPO / "train/manifests/full-history.toml", roles=["low"])
    eps, _ = load_episodes([EXPERT])
    ep = next(e for e in eps if e.id == "lockbox/find-key/train/18#0")
    prompts = [p for _, p in full_history_prompts(ep, full)]
    assert prompts[0] == ("[full]\nTask:\nFind the gold key; it is in the black box.\nHistory:\n"
                          "none\nObservation:\nYou are in a small room. Boxes here: gold, black."
                          "\n[inventory] you hold:\nAction:")
    # Every earlier action and the text it led to; parts (the inventory) only for the present.
    assert ("History:\n> take black key\nDone: take black key. Boxes here: gold, black.\n"
            "> open black box\nDone: open black box. Boxes here: gold, black.\nObservation:\n"
            "Done: open black box. Boxes here: gold, black.\n[inventory] you hold: black key\n"
            "Action:") in prompts[2]


def test_tokens_per_step_grows_only_for_full_history(tokenizer, work):
    eps, _ = load_episodes([EXPERT, ROLLOUTS])
    res = tokens_per_step(eps, load_manifest(REPO / "train/manifests/compact.toml"),
                          load_tokenizer(tokenizer),
                          load_manifest(REPO / "train/manifests/full-history.toml", ["low"]))
    assert res["episodes"] == 24 and res["rows"][0]["step"] == 0
    assert res["full_slope"] > 5 and abs(res["hrl_slope"]) < res["full_slope"] / 2
    s = cli("tokens-per-step", "--records", EXPERT, ROLLOUTS, "--tokenizer", tokenizer,
            "--out", work / "tps")
    assert (work / "tps" / "tokens_per_step.png").is_file() and s["episodes"] == 24


def test_history_prompts_equal_what_the_runtime_played():
    # One ALFWorld episode played by `stepwire run` with a flat policy exported from
    # full-history.toml: the history the runtime wrote as progress at each step is the one the
    # training side renders from the same episode.
    full = load_manifest(REPO / "train/manifests/full-history.toml", roles=["low"])
    eps, _ = load_episodes([REPO / "train/tests/data/flat-history-alfworld.jsonl"], outcomes=None)
    (ep,) = eps
    pairs = full_history_prompts(ep, full)
    assert len(pairs) == 6
    for t, prompt in pairs:
        assert t["state"]["subtask"] in prompt
        history = t["state"]["progress"] or full.empty_field
        assert f"History:\n{history}\nObservation:\n" in prompt, t["step"]
