"""The full-history baseline's prompts and the tokens-per-step comparison on real recordings."""

from conftest import EXPERT, REPO, ROLLOUTS, cli

from stepwire_train.history import full_history_prompts, tokens_per_step
from stepwire_train.manifest import load_manifest
from stepwire_train.records import load_episodes
from stepwire_train.tokenizer import load_tokenizer


def test_full_history_prompt_holds_every_earlier_step():
    full = load_manifest(REPO / "train/manifests/full-history.toml", roles=["full"])
    eps, _ = load_episodes([EXPERT])
    ep = next(e for e in eps if e.id == "lockbox/find-key/train/18#0")
    prompts = [p for _, p in full_history_prompts(ep, full)]
    assert prompts[0] == ("[full]\nTask:\nFind the gold key; it is in the black box.\nHistory:\n"
                          "none\nObservation:\nYou are in a small room. Boxes here: gold, black."
                          "\n[inventory] you hold:\nAction:")
    assert ("History:\nYou are in a small room. Boxes here: gold, black.\n[inventory] you hold:"
            "\n> take black key\nDone: take black key. Boxes here: gold, black.\n[inventory] you "
            "hold: black key\n> open black box\nObservation:\n") in prompts[2]


def test_tokens_per_step_grows_only_for_full_history(tokenizer, work):
    eps, _ = load_episodes([EXPERT, ROLLOUTS])
    res = tokens_per_step(eps, load_manifest(REPO / "train/manifests/compact.toml"),
                          load_tokenizer(tokenizer),
                          load_manifest(REPO / "train/manifests/full-history.toml", ["full"]))
    assert res["episodes"] == 24 and res["rows"][0]["step"] == 0
    assert res["full_slope"] > 5 and abs(res["hrl_slope"]) < res["full_slope"] / 2
    s = cli("tokens-per-step", "--records", EXPERT, ROLLOUTS, "--tokenizer", tokenizer,
            "--out", work / "tps")
    assert (work / "tps" / "tokens_per_step.png").is_file() and s["episodes"] == 24
