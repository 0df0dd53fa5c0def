"""Packed batches: the loss reads target tokens only, and a packed row computes exactly what
each sample alone computes (positions restart, the mask is block-diagonal)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from stepwire_train import model as M  # noqa: E402
from stepwire_train.packing import Item, collate, pack_rows  # noqa: E402
from stepwire_train.tokenizer import PAD  # noqa: E402


def items():
    rng = np.random.default_rng(0)
    out = []
    for n_p, n_t in [(7, 3), (5, 2), (9, 4), (4, 1), (12, 5)]:
        ids = rng.integers(4, 50, size=n_p + n_t).tolist()
        ids[0], ids[-1] = 1, 2
        out.append(Item(np.asarray(ids), n_p))
    return out


def test_loss_positions_cover_exactly_the_targets():
    its = items()
    rows = pack_rows([len(i.ids) for i in its], range(len(its)), seq_len=24)
    b = collate(its, rows, PAD)
    flat = b["input_ids"].reshape(-1)
    # Each predicted label is the token right after its hidden-state position...
    assert torch.equal(flat[b["pred_idx"] + 1], b["pred_labels"])
    # ...and the labels are, sample by sample, exactly the target ids (prompt never scored).
    got = {}
    for lab, s in zip(b["pred_labels"].tolist(), b["pred_sample"].tolist()):
        got.setdefault(b["samples"][s], []).append(lab)
    assert got == {k: its[k].ids[its[k].n_prompt:].tolist() for k in range(len(its))}
    assert b["targets"] == sum(len(i.ids) - i.n_prompt for i in its)
    # V reads the last prompt token, Q the last token (</s>).
    assert flat[b["q_idx"]].tolist() == [2] * len(its)


def test_rows_respect_seq_len_and_keep_every_item():
    lengths = [10, 300, 20, 5, 15, 7, 30]
    rows = pack_rows(lengths, range(len(lengths)), seq_len=40)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    for r in rows:
        assert len(r) == 1 or sum(lengths[i] for i in r) <= 40


def test_packed_rows_equal_unpacked_samples():
    torch.manual_seed(0)
    cfg = M.make_config(64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        num_key_value_heads=1, intermediate_size=64)
    model = M.new_model(cfg, 0).eval()
    its = items()
    packed = collate(its, pack_rows([len(i.ids) for i in its], range(len(its)), 24), PAD)
    with torch.no_grad():
        lp = M.target_logprobs(model, M.hidden_states(model.model, packed), packed)
        for k, it in enumerate(its):
            ids = torch.tensor([it.ids.tolist()])
            logits = model(input_ids=ids).logits[0, it.n_prompt - 1:-1]
            want = torch.log_softmax(logits, -1).gather(1, ids[0, it.n_prompt:, None])[:, 0]
            smp = packed["samples"].index(k)
            got = lp[packed["pred_sample"] == smp]
            assert torch.allclose(got, want, atol=1e-5), (k, got, want)
