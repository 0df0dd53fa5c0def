#!/usr/bin/env python3
"""Build the tiny ONNX policy fixtures under models/ (no download; everything is made here).

For each model directory (models/tiny-llama, models/tiny-qwen2) this script:

1. trains a small byte-level BPE tokenizer with the `tokenizers` library on text-game-like
   sentences that it generates itself (shared by all models; fixed seed);
2. builds a random-initialised decoder from a config alone (fixed seed);
3. records the greedy tokens that `transformers`' `generate(do_sample=False, max_new_tokens=20)`
   produces on the PyTorch model for a few STEP-HRL prompts, and for a left-padded batch;
4. exports the model with optimum-onnx for `text-generation-with-past` (one `model.onnx` with the
   KV-cache inputs/outputs);
5. runs a plain onnxruntime greedy loop with the KV cache over the export and asserts that it
   reproduces the recorded tokens exactly (single prompts and the left-padded batch);
6. writes model.onnx, tokenizer.json, config.json, stepwire.toml and expected.json.

Usage (from the repository root, in a venv with requirements/models.txt + onnxruntime):

    python scripts/build-test-models.py            # the committed fixtures
    python scripts/build-test-models.py --only tiny-llama
    python scripts/build-test-models.py --only bench-llama   # .cache/models/bench-llama, for benchmarks

The script is deterministic: running it again rewrites identical token ids (and, on the same
package versions, identical files).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO / "models"

SEED = 20261125
MAX_NEW_TOKENS = 20
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]  # ids 0..3, Llama order + pad
TARGET_VOCAB = 3072
MAX_SEED_TRIES = 40
MIN_LOGIT_GAP = 0.01  # ~300x the PyTorch/onnxruntime logit difference measured on these models


def die(msg: str) -> None:
    print(f"build-test-models: error: {msg}", file=sys.stderr)
    sys.exit(1)


try:
    import numpy as np
    import onnxruntime as ort
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
    )
    from optimum.exporters.onnx import main_export
except ImportError as e:  # pragma: no cover
    die(
        f"{e}. Install the fixture requirements first:\n"
        "  python3.11 -m venv .cache/venv-models\n"
        "  .cache/venv-models/bin/pip install -r requirements/models.txt onnxruntime==1.31.1 tokenizers numpy"
    )


# --------------------------------------------------------------------------------------------
# Text: corpus for the tokenizer, templates, prompts
# --------------------------------------------------------------------------------------------

ROOMS = ["kitchen", "living room", "bedroom", "bathroom", "hallway", "greenhouse", "workshop",
         "foundry", "art studio", "outside", "laundry room", "office", "garage", "pantry"]
RECEPTACLES = ["fridge", "countertop", "cabinet", "drawer", "shelf", "sinkbasin", "microwave",
               "stoveburner", "dresser", "sidetable", "desk", "garbagecan", "coffeemachine",
               "toaster", "bathtubbasin", "armchair", "sofa", "bed", "diningtable", "safe"]
OBJECTS = ["apple", "mug", "knife", "potato", "tomato", "egg", "bread", "lettuce", "plate",
           "bowl", "cup", "pan", "pot", "spoon", "fork", "spatula", "soapbar", "towel", "candle",
           "book", "pen", "pencil", "keychain", "cellphone", "laptop", "pillow", "vase",
           "watch", "creditcard", "remotecontrol", "newspaper", "statue", "box", "cd",
           "thermometer", "beaker", "seed", "flower pot", "water", "orange juice", "soap",
           "battery", "wire", "light bulb", "red wire", "blue paint", "yellow paint"]
STATES = ["clean", "hot", "cool", "sliced", "heated", "frozen", "melted", "open", "closed",
          "on", "off", "empty", "full", "dirty", "broken"]
SCI_TASKS = ["boil water", "melt ice", "freeze orange juice", "grow a plant", "test conductivity",
             "measure the temperature of", "find a living thing", "create green paint",
             "determine which object is heavier", "change the state of matter of"]
VERBS_OBJ = ["take {o} {n} from {r} {m}", "put {o} {n} in/on {r} {m}", "examine {o} {n}",
             "clean {o} {n} with sinkbasin 1", "heat {o} {n} with microwave 1",
             "cool {o} {n} with fridge 1", "slice {o} {n} with knife 1", "use {o} {n}",
             "pick up {o}", "move {o} to {r}", "focus on {o}", "pour {o} into {r}",
             "connect {o} to {r}", "mix {r}", "activate {r}", "deactivate {r}", "look at {o}"]
VERBS_REC = ["go to {r} {m}", "open {r} {m}", "close {r} {m}", "examine {r} {m}",
             "toggle {r} {m}", "look around", "inventory", "look", "wait", "wait1",
             "teleport to {room}", "open door to {room}", "go to {room}"]


# Extra words so the trained vocabulary reaches a realistic size (ALFWorld / ScienceWorld / TextWorld).
EXTRA_OBJECTS = """
alarmclock baseballbat basketball blinds butterknife cloth desklamp dishsponge dumbbell footstool
glassbottle handtowel houseplant kettle ladle laundryhamper mirror painting papertowelroll
peppershaker pillow plunger poster saltshaker scrubbrush showerdoor showerglass sink soapbottle
spraybottle stoveknob teddybear television tennisracket tissuebox toiletpaper toiletpaperhanger
towelholder wateringcan winebottle window lightswitch curtains bathtub cart handtowelholder
ottoman coffeetable tvstand shelf drawer toilet cabinet countertop garbagecan sidetable
acorn adult bee antenna aluminum foil ant anvil apple tree axe baby bag ball banana bark beetle
bell pepper bird blue jay bottle brick brown bear butterfly cactus candle carrot cat caterpillar
cedar cherry chicken chipmunk chocolate cloud coin computer copper corn cow crocodile cup board
dandelion dog dove duck eagle egg elephant fire fish flour fork frog fruit giraffe glass glue
gold grape hammer hawk heart honey horse ice cream iron jam jar kiwi lamp lead leaf lemon lichen
lion lizard marshmallow metal milk mint moss mouse mushroom nail nickel oak orange owl paper
pea peanut pear penguin pepper pie pine pineapple plastic plate pumpkin rabbit raccoon rat rock
rose rubber salt sand sandwich shell shovel silver snake snowball soil soup spider squirrel
steel stick stone strawberry sugar sunflower table thermos tin tire toad tomato tortoise tree
tulip turtle unknown substance violet wax wheat wolf wood wooden wool worm zinc
battery circuit switch generator solar panel bulb terminal anode cathode resistor buzzer motor
sodium chloride vinegar baking soda chemical mixture solution lens microscope telescope scale
ruler stopwatch freezer oven stove furnace blast chamber bucket cupboard dish basin container
""".split()
ADJECTIVES = """
red orange yellow green blue violet purple brown black white gray pink small large tiny huge
big little old new wooden metal plastic glass ceramic paper soft hard warm cold hot cool wet
dry clean dirty empty full open closed broken fresh rotten ripe unripe raw cooked sliced whole
bright dark heavy light long short round square shiny dull sharp blunt smooth rough sweet sour
electrical conductive nonconductive living nonliving liquid solid gaseous boiling frozen melted
""".split()
VERBS = """
activate close connect deactivate disconnect dunk eat flush focus go look move open pick pour
put read use wait mix heat cool clean slice toggle examine inventory teleport take drop
lock unlock push pull turn climb jump insert remove fill empty burn plant water feed measure
observe record compare check search find walk carry place throw catch break repair build
""".split()
FILLER = """
the a an of to in on at from with into onto by for and or but not no yes it its this that these
there here you your i my me we our they them he she his her is are was were be been being has
have had do does did done can could will would should must may might now then next first second
third last before after while when where which what who why how all some any each every other
another more most less least very too also just only still already again once twice always never
task subtask goal step steps action actions progress observation summary agent environment room
door doors hallway place places item items object objects thing things state states temperature
degrees celsius score points reward episode game level world house kitchen garden forest
completed complete incomplete failed success succeeded failure found missing holding held
carrying nothing something everything somewhere anywhere nearby inside outside above below under
behind beside between around through across toward towards left right north south east west up
down back away together apart
""".split()


def _sentence(rng: random.Random) -> str:
    words = []
    for _ in range(rng.randint(6, 16)):
        k = rng.random()
        if k < 0.35:
            words.append(rng.choice(FILLER))
        elif k < 0.55:
            words.append(rng.choice(ADJECTIVES))
        elif k < 0.8:
            words.append(rng.choice(EXTRA_OBJECTS + OBJECTS))
        elif k < 0.95:
            words.append(rng.choice(VERBS))
        else:
            words.append(str(rng.randint(0, 120)))
    s = " ".join(words)
    return s[0].upper() + s[1:] + rng.choice([".", ".", ".", "?", "!", ";", ":"])


def _obs(rng: random.Random) -> str:
    room = rng.choice(ROOMS)
    items = rng.sample(RECEPTACLES, rng.randint(3, 9))
    listing = ", ".join(f"a {it} {rng.randint(1, 4)}" for it in items)
    parts = [f"You are in the middle of a {room}. Looking quickly around you, you see {listing}."]
    if rng.random() < 0.5:
        r = rng.choice(RECEPTACLES)
        objs = rng.sample(OBJECTS, rng.randint(1, 4))
        parts.append(f"On the {r} {rng.randint(1, 3)}, you see "
                     + ", ".join(f"a {o} {rng.randint(1, 3)}" for o in objs) + ".")
    if rng.random() < 0.4:
        r = rng.choice(RECEPTACLES)
        parts.append(f"The {r} {rng.randint(1, 3)} is {rng.choice(['open', 'closed'])}. "
                     f"In it, you see {rng.choice(['nothing', 'a ' + rng.choice(OBJECTS)])}.")
    if rng.random() < 0.3:
        parts.append(f"The temperature of the {rng.choice(OBJECTS)} is "
                     f"{rng.randint(-10, 110)} degrees celsius.")
    return " ".join(parts)


def _action(rng: random.Random) -> str:
    tmpl = rng.choice(VERBS_OBJ + VERBS_REC)
    return tmpl.format(o=rng.choice(OBJECTS), n=rng.randint(1, 3), r=rng.choice(RECEPTACLES),
                       m=rng.randint(1, 4), room=rng.choice(ROOMS))


def _subtask(rng: random.Random) -> str:
    o, r = rng.choice(OBJECTS), rng.choice(RECEPTACLES)
    return rng.choice([
        f"find the {o}", f"take the {o}", f"go to the {rng.choice(ROOMS)}",
        f"put the {o} in the {r}", f"heat the {o}", f"cool the {o}", f"clean the {o}",
        f"slice the {o}", f"open the {r}", f"focus on the {o}", f"examine the {r}",
        f"measure the temperature of the {o}", f"pour the {o} into the {r}",
    ])


def _progress(rng: random.Random) -> str:
    o, r = rng.choice(OBJECTS), rng.choice(RECEPTACLES)
    return rng.choice([
        f"I went to the {r} {rng.randint(1, 3)} and saw the {o}.",
        f"I am holding the {o}. Next I need to go to the {r}.",
        f"The {r} was closed; I opened it and it contains nothing useful.",
        f"I have checked {rng.randint(1, 5)} places but have not found the {o} yet.",
        f"The {o} is now {rng.choice(STATES)}. The subtask is almost complete.",
        "Nothing has been done yet.",
        f"I put the {o} on the {r}. The subtask is complete.",
    ])


def _task(rng: random.Random) -> str:
    o, o2, r = rng.choice(OBJECTS), rng.choice(OBJECTS), rng.choice(RECEPTACLES)
    return rng.choice([
        f"put a {rng.choice(STATES)} {o} in {r}.",
        f"put two {o} in {r}.",
        f"examine the {o} with the desklamp.",
        f"heat some {o} and put it in {r}.",
        f"find a {o} and a {o2} and put them in the {r}.",
        f"Your task is to {rng.choice(SCI_TASKS)} {o}. First, focus on the substance.",
    ])


def build_corpus(rng: random.Random, n: int = 12000) -> list[str]:
    lines = []
    for _ in range(n):
        k = rng.random()
        if k < 0.3:
            lines.append(_obs(rng))
        elif k < 0.4:
            lines.append(" ".join(_sentence(rng) for _ in range(rng.randint(1, 3))))
        elif k < 0.6:
            lines.append(f"> {_action(rng)} ||| {rng.choice(['done', 'continue'])}")
        elif k < 0.75:
            lines.append(f"Subtask: {_subtask(rng)}. Progress: {_progress(rng)}")
        else:
            lines.append(f"Your task is to: {_task(rng)}")
    # The instruction preambles are part of what a fine-tuned policy's tokenizer has seen.
    for _ in range(3):
        for t in TEMPLATES.values():
            lines.append(t.split("{")[0])
    return lines


HIGH_TEMPLATE = (
    "You are the high-level planner of a household and science agent that acts in a text "
    "environment. The agent solves a long task by completing a sequence of short subtasks. "
    "At every step you receive four fields: the task description, the list of subtasks that "
    "have already been completed, the final local progress summary of the last subtask, and "
    "the current observation of the environment. You never see the full history of the "
    "episode, so rely only on these fields.\n"
    "Rules:\n"
    "1. Propose exactly one next subtask that moves the agent closer to finishing the task.\n"
    "2. A subtask is a short imperative phrase such as \"find the apple\", \"take the mug\", "
    "\"heat the egg\", \"go to the kitchen\" or \"put the plate in the cabinet\".\n"
    "3. Do not repeat a subtask that is already completed unless the observation shows that "
    "its effect was undone.\n"
    "4. If the last progress says the previous subtask failed, propose a subtask that fixes "
    "the problem, for example searching a different receptacle or opening a closed one.\n"
    "5. Answer with the subtask only, on one line, with no explanation.\n"
    "\n"
    "Task:\n{task}\n"
    "Completed subtasks:\n{completed_subtasks}\n"
    "Last progress:\n{last_progress}\n"
    "Observation:\n{observation}\n"
    "Next subtask:"
)

LOW_TEMPLATE = (
    "You are the low-level controller of a household and science agent that acts in a text "
    "environment. A high-level planner has given you one subtask. At every step you receive "
    "three fields: the current subtask, a short summary of the local progress made on it so "
    "far, and the current observation of the environment. You never see the full history of "
    "the episode, so rely only on these fields.\n"
    "Rules:\n"
    "1. Choose exactly one primitive action that the environment accepts, for example "
    "\"go to fridge 1\", \"open fridge 1\", \"take apple 1 from countertop 2\", "
    "\"put mug 2 in/on coffeemachine 1\", \"heat egg 1 with microwave 1\", \"look around\" or "
    "\"focus on seed 1\".\n"
    "2. Use the object and receptacle names with their numbers exactly as the observation "
    "writes them.\n"
    "3. After the action write the separator \" ||| \" and then \"done\" if this action "
    "completes the subtask, or \"continue\" if more actions are needed.\n"
    "4. Answer on one line in the form: <action> ||| <done|continue>\n"
    "\n"
    "Subtask:\n{subtask}\n"
    "Progress:\n{progress}\n"
    "Observation:\n{observation}\n"
    "Action:"
)

PROGRESS_TEMPLATE = (
    "You are the local progress tracker of a household and science agent that acts in a text "
    "environment. The agent is working on one subtask given by a high-level planner. After "
    "every action you rewrite a short summary of the progress made on the current subtask, so "
    "that the controller can decide its next action without seeing the full history of the "
    "episode. At every step you receive four fields: the current subtask, the previous "
    "progress summary, the action that was just taken, and the observation that the "
    "environment returned.\n"
    "Rules:\n"
    "1. Keep what still matters from the previous summary: places already searched, objects "
    "found, objects held, and states such as open, closed, hot, cool, clean or sliced.\n"
    "2. Add what the new observation shows. If the action failed or had no effect, say so.\n"
    "3. Drop details that no longer matter for the subtask.\n"
    "4. Write at most two short sentences in the first person, on one line, with no "
    "explanation of your reasoning.\n"
    "\n"
    "Subtask:\n{subtask}\n"
    "Previous progress:\n{progress}\n"
    "Action:\n{action}\n"
    "Observation:\n{observation}\n"
    "Updated progress:"
)

TEMPLATES = {"high": HIGH_TEMPLATE, "low": LOW_TEMPLATE, "progress": PROGRESS_TEMPLATE}

LONG_OBSERVATION = (
    "You are in the middle of a room. Looking quickly around you, you see a cabinet 1, a "
    "cabinet 2, a cabinet 3, a cabinet 4, a cabinet 5, a cabinet 6, a coffeemachine 1, a "
    "countertop 1, a countertop 2, a countertop 3, a drawer 1, a drawer 2, a drawer 3, a "
    "fridge 1, a garbagecan 1, a microwave 1, a shelf 1, a shelf 2, a shelf 3, a sinkbasin 1, "
    "a stoveburner 1, a stoveburner 2, a stoveburner 3, a stoveburner 4, and a toaster 1. "
    "On the countertop 2, you see a apple 1, a bread 1, a butterknife 2, a cellphone 1, a "
    "creditcard 1, a knife 1, a lettuce 2, a mug 2, a peppershaker 1, a potato 3, and a "
    "spoon 1."
)

# (name, role, fields). Rendered with the templates; the raw ones are short free-text prompts.
PROMPTS = [
    ("high_long", "high", {
        "task": "heat some egg and put it in garbagecan.",
        "completed_subtasks": "find the egg; take the egg",
        "last_progress": "I took egg 2 from countertop 3. I am holding the egg.",
        "observation": LONG_OBSERVATION,
    }),
    ("low_kitchen", "low", {
        "subtask": "take the apple",
        "progress": "I went to countertop 2 and saw apple 1.",
        "observation": "On the countertop 2, you see a apple 1, a bread 1, and a mug 2.",
    }),
    ("progress_fridge", "progress", {
        "subtask": "cool the apple",
        "progress": "I am holding apple 1. I need to go to the fridge.",
        "action": "go to fridge 1",
        "observation": "You arrive at fridge 1. The fridge 1 is closed.",
    }),
    ("high_start", "high", {
        "task": "put a clean mug in coffeemachine.",
        "completed_subtasks": "none",
        "last_progress": "Nothing has been done yet.",
        "observation": "You are in the middle of a kitchen. You see a sinkbasin 1 and a mug 1.",
    }),
    ("raw_short_obs", None, "you are in the kitchen. you see a fridge 1, a countertop 2"),
    ("raw_short_action", None, "go to fridge 1"),
]

# Batched, left-padded cases: lists of prompt names above (different lengths).
BATCHES = [
    ("batch_low_progress_raw", ["low_kitchen", "progress_fridge", "raw_short_action"]),
    ("batch_high_raw", ["high_long", "raw_short_obs"]),
]


def render(role: str | None, fields) -> str:
    if role is None:
        return fields
    return TEMPLATES[role].format(**fields)


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------

def build_tokenizer() -> Tokenizer:
    rng = random.Random(SEED)
    corpus = build_corpus(rng)
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TARGET_VOCAB,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    for i, s in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(s) != i:
            die(f"special token {s} got id {tok.token_to_id(s)}, expected {i}")
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                      special_tokens=[("<s>", bos)]),
    ])
    return tok


def wrap_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        padding_side="left", model_max_length=1024, clean_up_tokenization_spaces=False,
    )


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

def make_config(kind: str, vocab: int, sizes: dict):
    common = dict(
        vocab_size=vocab, **sizes, max_position_embeddings=1024,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, pad_token_id=3, torch_dtype="float32",
    )
    if kind == "llama":
        return LlamaConfig(**common, hidden_act="silu", attention_bias=False, mlp_bias=False,
                           head_dim=32, initializer_range=0.02), LlamaForCausalLM
    if kind == "qwen2":
        return Qwen2Config(**common, hidden_act="silu", use_sliding_window=False,
                           initializer_range=0.02), Qwen2ForCausalLM
    die(f"unknown model kind {kind}")


def make_model(kind: str, vocab: int, init_std: float, seed: int, sizes: dict):
    config, cls = make_config(kind, vocab, sizes)
    torch.manual_seed(seed)
    model = cls(config)
    # Random init at std 0.02 gives near-uniform logits in so small a model, and greedy decoding
    # then collapses to a single repeated token. Re-draw every matrix with a larger std so that
    # different prompts lead to different, varied continuations; norms stay at 1.
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) * init_std)
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=g) * init_std)
    model.eval()
    model.generation_config.do_sample = False
    model.generation_config.pad_token_id = 3
    model.generation_config.eos_token_id = 2
    model.generation_config.bos_token_id = 1
    return model


def hf_generate(model, input_ids, attention_mask):
    """Greedy tokens per row, and the smallest top-1/top-2 logit gap over the live rows."""
    with torch.no_grad():
        out = model.generate(
            input_ids=torch.tensor(input_ids, dtype=torch.long),
            attention_mask=torch.tensor(attention_mask, dtype=torch.long),
            do_sample=False, max_new_tokens=MAX_NEW_TOKENS, pad_token_id=3, eos_token_id=2,
            output_scores=True, return_dict_in_generate=True,
        )
    toks = out.sequences[:, len(input_ids[0]):].tolist()
    gap = float("inf")
    for step, scores in enumerate(out.scores):
        top2 = torch.topk(scores, 2, dim=-1).values
        for row in range(len(toks)):
            if 2 not in toks[row][:step]:
                gap = min(gap, float(top2[row, 0] - top2[row, 1]))
    return toks, gap


def left_pad(rows: list[list[int]], pad_id: int):
    width = max(len(r) for r in rows)
    ids = [[pad_id] * (width - len(r)) + r for r in rows]
    mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
    return ids, mask


# --------------------------------------------------------------------------------------------
# ONNX Runtime greedy loop (what the Rust runtime must reproduce)
# --------------------------------------------------------------------------------------------

class OrtGreedy:
    def __init__(self, path: Path):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.inputs = {i.name: i for i in self.sess.get_inputs()}
        self.outputs = [o.name for o in self.sess.get_outputs()]
        self.past_names = sorted(
            (n for n in self.inputs if n.startswith("past_key_values.")),
            key=lambda n: (int(n.split(".")[1]), n.split(".")[2]),
        )
        shape = self.inputs[self.past_names[0]].shape  # [batch, kv_heads, past_len, head_dim]
        self.kv_heads, self.head_dim = int(shape[1]), int(shape[3])

    def _run(self, ids, mask, pos, past):
        feed = {"input_ids": ids, "attention_mask": mask, **past}
        if "position_ids" in self.inputs:
            feed["position_ids"] = pos
        return dict(zip(self.outputs, self.sess.run(self.outputs, feed)))

    def _present_as_past(self, res):
        return {n: res[n.replace("past_key_values", "present")] for n in self.past_names}

    def generate(self, input_ids, attention_mask, max_new_tokens, eos_id, pad_id,
                 prefix_len=0):
        """Greedy decode. With prefix_len > 0 the prompt is prefilled in two chunks (the first
        prefix_len tokens, then the rest on top of their KV cache), as a prefix cache does."""
        ids = np.asarray(input_ids, dtype=np.int64)
        mask = np.asarray(attention_mask, dtype=np.int64)
        b = ids.shape[0]
        past = {n: np.zeros((b, self.kv_heads, 0, self.head_dim), dtype=np.float32)
                for n in self.past_names}
        pos = np.cumsum(mask, axis=1) - 1
        pos[mask == 0] = 1
        if prefix_len:
            res = self._run(ids[:, :prefix_len], mask[:, :prefix_len], pos[:, :prefix_len], past)
            past = self._present_as_past(res)
            ids, pos = ids[:, prefix_len:], pos[:, prefix_len:]
        feed_ids, feed_pos = ids, pos
        unfinished = np.ones(b, dtype=bool)
        out = np.zeros((b, 0), dtype=np.int64)
        min_margin = float("inf")
        for _ in range(max_new_tokens):
            res = self._run(feed_ids, mask, feed_pos, past)
            logits = res["logits"][:, -1, :]
            if not np.isfinite(logits[unfinished]).all():
                raise AssertionError("non-finite logits from onnxruntime")
            top2 = np.sort(logits, axis=1)[:, -2:]
            gaps = (top2[:, 1] - top2[:, 0])[unfinished]
            if gaps.size:
                min_margin = min(min_margin, float(gaps.min()))
            nxt = logits.argmax(axis=1).astype(np.int64)
            nxt = np.where(unfinished, nxt, pad_id)
            out = np.concatenate([out, nxt[:, None]], axis=1)
            unfinished &= nxt != eos_id
            if not unfinished.any():
                break
            past = self._present_as_past(res)
            mask = np.concatenate([mask, np.ones((b, 1), dtype=np.int64)], axis=1)
            feed_ids = nxt[:, None]
            feed_pos = (np.cumsum(mask, axis=1) - 1)[:, -1:]
        return out.tolist(), min_margin


def strip_after_eos(row: list[int], eos: int, pad: int) -> list[int]:
    # generate() pads finished rows with pad_token_id; keep tokens up to and including eos.
    if eos in row:
        return row[: row.index(eos) + 1]
    return row


def repetition_ok(toks: list[int]) -> bool:
    return len(set(toks)) >= max(3, len(toks) // 4)


# --------------------------------------------------------------------------------------------
# Manifest and docs
# --------------------------------------------------------------------------------------------

def toml_literal_ml(s: str) -> str:
    if "'''" in s:
        die("template contains ''' which TOML multi-line literal strings cannot hold")
    return "'''\n" + s + "'''"


def manifest_text() -> str:
    return "\n".join([
        "# stepwire policy manifest (written by scripts/build-test-models.py; do not edit by hand)",
        "[model]",
        'onnx = "model.onnx"',
        'tokenizer = "tokenizer.json"',
        'roles = ["high", "low", "progress"]',
        'eos_token = "</s>"',
        'bos_token = "<s>"      # prepended if the tokenizer\'s post-processor doesn\'t',
        'pad_token = "<pad>"',
        "",
        "[generation]",
        "max_new_tokens = { high = 24, low = 16, progress = 32 }",
        'stop = ["\\n"]',
        "",
        "[templates]",
        "# {placeholders} filled by the runtime; the text before the first placeholder is the "
        "cacheable prefix.",
        "# Every placeholder directly follows a newline, so with the byte-level BPE the prefix "
        "tokenizes",
        "# to the same ids alone as inside the full prompt (a token never spans a newline and a "
        "field).",
        "high = " + toml_literal_ml(HIGH_TEMPLATE),
        "low = " + toml_literal_ml(LOW_TEMPLATE),
        "progress = " + toml_literal_ml(PROGRESS_TEMPLATE),
        "",
        "[low]",
        'done_separator = " ||| "',
        'done_token = "done"',
        'continue_token = "continue"',
        "",
    ])


# --------------------------------------------------------------------------------------------
# Build one model directory
# --------------------------------------------------------------------------------------------

# Layer sizes: the committed fixtures stay a few MB; `bench-llama` has the hidden size and depth of
# the reference design's benchmark model (hidden 256, 4 layers; 3.6 M parameters with this vocabulary), built
# into .cache/models for benchmarks only (`--only bench-llama`), never committed.
TINY = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2)
BENCH = dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=8,
             num_key_value_heads=4)

MODELS = {
    # name: (kind, init std, sizes, output folder)
    "tiny-llama": ("llama", 0.25, TINY, MODELS_DIR),
    "tiny-qwen2": ("qwen2", 0.25, TINY, MODELS_DIR),
    "bench-llama": ("llama", 0.25, BENCH, REPO / ".cache" / "models"),
}
DEFAULT_MODELS = ["tiny-llama", "tiny-qwen2"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_model(name: str, tok: Tokenizer, workdir: Path) -> dict:
    kind, init_std, sizes, models_dir = MODELS[name]
    t0 = time.time()
    print(f"[{name}] building {kind} model (init std {init_std})", flush=True)
    hf_tok = wrap_tokenizer(tok)
    vocab = tok.get_vocab_size()

    texts = {pname: render(role, fields) for pname, role, fields in PROMPTS}
    prompt_ids = {}
    for pname, text in texts.items():
        ids = tok.encode(text).ids
        if ids[0] != 1:
            die("tokenizer did not prepend <s>")
        if hf_tok(text)["input_ids"] != ids:
            die("PreTrainedTokenizerFast and tokenizers disagree on prompt ids")
        prompt_ids[pname] = ids
    prefix_lens = {}
    for pname, role, _ in PROMPTS:
        if role is None:
            continue
        prefix = tok.encode(TEMPLATES[role].split("{")[0]).ids
        if prompt_ids[pname][: len(prefix)] != prefix:
            die(f"{pname}: the template prefix does not tokenize to a prefix of the prompt")
        prefix_lens[pname] = len(prefix)

    # Pick the first seed whose random model gives varied greedy outputs, no special tokens
    # other than </s> in them, and a clear top-1/top-2 logit gap at every greedy decision
    # (so that float noise between runtimes, thread counts or batch shapes cannot flip a token).
    for attempt in range(MAX_SEED_TRIES):
        seed = SEED + 1000 * attempt
        model = make_model(kind, vocab, init_std, seed, sizes)
        singles_out, batch_out, gaps, why = {}, {}, [], None
        for pname, _, _ in PROMPTS:
            ids = prompt_ids[pname]
            (out,), gap = hf_generate(model, [ids], [[1] * len(ids)])
            singles_out[pname] = strip_after_eos(out, 2, 3)
            gaps.append(gap)
        for bname, members in BATCHES:
            ids, mask = left_pad([prompt_ids[m] for m in members], 3)
            batch_out[bname], gap = hf_generate(model, ids, mask)
            gaps.append(gap)
        outs = list(singles_out.values())
        if min(gaps) < MIN_LOGIT_GAP:
            why = f"smallest logit gap {min(gaps):.4f} < {MIN_LOGIT_GAP}"
        elif any(t in (0, 1, 3) for o in outs for t in o):
            why = "a special token other than </s> in the outputs"
        elif not all(repetition_ok(o) for o in outs):
            why = "a degenerate (repetitive) output"
        elif len({tuple(o) for o in outs}) < len(outs):
            why = "identical outputs for different prompts"
        if why is None:
            break
        print(f"[{name}] seed {seed} rejected: {why}", flush=True)
    else:
        die(f"[{name}] no acceptable seed in {MAX_SEED_TRIES} tries")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[{name}] seed {seed}: {n_params} parameters, smallest logit gap {min(gaps):.4f}",
          flush=True)

    hf_dir = workdir / f"{name}-hf"
    onnx_dir = workdir / f"{name}-onnx"
    model.save_pretrained(hf_dir, safe_serialization=True)
    hf_tok.save_pretrained(hf_dir)

    singles = []
    for pname, role, fields in PROMPTS:
        ids, out = prompt_ids[pname], singles_out[pname]
        singles.append({
            "name": pname, "role": role,
            "fields": fields if role else None,
            "prompt": texts[pname], "prompt_ids": ids, "prompt_len": len(ids),
            "prefix_len": prefix_lens.get(pname),
            "output_ids": out, "output_text": tok.decode(out, skip_special_tokens=False),
        })
        print(f"[{name}] {pname}: {len(ids)} prompt tokens -> {out}", flush=True)

    batches = []
    for bname, members in BATCHES:
        ids, mask = left_pad([prompt_ids[m] for m in members], 3)
        outs = batch_out[bname]
        batches.append({
            "name": bname, "padding_side": "left", "members": members,
            "input_ids": ids, "attention_mask": mask,
            "output_ids": outs,  # rows as generate() returns them (pad after a row's eos)
            "output_text": [tok.decode(strip_after_eos(o, 2, 3), skip_special_tokens=False)
                            for o in outs],
        })
        for m, o in zip(members, outs):
            same = strip_after_eos(o, 2, 3) == singles_out[m]
            print(f"[{name}] {bname}/{m}: {'same as' if same else 'DIFFERS from'} unbatched",
                  flush=True)

    # Export with optimum-onnx.
    print(f"[{name}] exporting with optimum-onnx", flush=True)
    main_export(str(hf_dir), output=str(onnx_dir), task="text-generation-with-past",
                device="cpu", do_validation=True, library_name="transformers")
    onnx_files = sorted(p.name for p in onnx_dir.glob("*.onnx*"))
    if onnx_files != ["model.onnx"]:
        die(f"[{name}] expected optimum to write exactly model.onnx, got {onnx_files}")

    # Check the export against the recorded tokens with a plain onnxruntime loop.
    runner = OrtGreedy(onnx_dir / "model.onnx")
    margins = []
    for s in singles:
        got, m = runner.generate([s["prompt_ids"]], [[1] * s["prompt_len"]], MAX_NEW_TOKENS, 2, 3)
        margins.append(m)
        if got[0] != s["output_ids"]:
            die(f"[{name}] onnxruntime != transformers for {s['name']}:\n"
                f"  ort: {got[0]}\n  hf:  {s['output_ids']}")
        if s["prefix_len"]:
            got, m = runner.generate([s["prompt_ids"]], [[1] * s["prompt_len"]],
                                     MAX_NEW_TOKENS, 2, 3, prefix_len=s["prefix_len"])
            margins.append(m)
            if got[0] != s["output_ids"]:
                die(f"[{name}] chunked prefill (prefix {s['prefix_len']} tokens) != "
                    f"transformers for {s['name']}:\n  ort: {got[0]}\n  hf:  {s['output_ids']}")
    for bt in batches:
        got, m = runner.generate(bt["input_ids"], bt["attention_mask"], MAX_NEW_TOKENS, 2, 3)
        margins.append(m)
        # generate() keeps going until every row has finished; compare up to our length.
        want = [row[: len(got[0])] for row in bt["output_ids"]]
        if got != want:
            die(f"[{name}] onnxruntime != transformers for batch {bt['name']}:\n"
                f"  ort: {got}\n  hf:  {bt['output_ids']}")
    print(f"[{name}] onnxruntime greedy loop matches transformers token for token "
          f"({len(singles)} prompts, also with the template prefix prefilled as a separate "
          f"chunk; {len(batches)} left-padded batches; "
          f"smallest top-1/top-2 logit gap {min(margins):.4f})", flush=True)

    # Write the directory.
    out_dir = models_dir / name
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("model.onnx", "model.onnx_data", "tokenizer.json", "config.json",
                  "generation_config.json", "stepwire.toml", "expected.json", "io.json"):
        (out_dir / stale).unlink(missing_ok=True)
    shutil.copyfile(onnx_dir / "model.onnx", out_dir / "model.onnx")
    tok.save(str(out_dir / "tokenizer.json"), pretty=False)
    cfg = json.loads((hf_dir / "config.json").read_text())
    cfg.pop("transformers_version", None)
    (out_dir / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    manifest = manifest_text()
    parsed = tomllib.loads(manifest)
    for role in ("high", "low", "progress"):
        if parsed["templates"][role] != TEMPLATES[role]:
            die(f"manifest template {role} does not round-trip through TOML")
    (out_dir / "stepwire.toml").write_text(manifest)

    io = {
        "inputs": [{"name": i.name, "type": i.type, "shape": i.shape}
                   for i in runner.sess.get_inputs()],
        "outputs": [{"name": o.name, "type": o.type, "shape": o.shape}
                    for o in runner.sess.get_outputs()],
    }
    (out_dir / "io.json").write_text(json.dumps(io, indent=1) + "\n")

    expected = {
        "model": name,
        "architecture": cfg["architectures"][0],
        "num_layers": cfg["num_hidden_layers"],
        "num_key_value_heads": cfg["num_key_value_heads"],
        "head_dim": runner.head_dim,
        "vocab_size": vocab,
        "parameters": n_params,
        "seed": seed,
        "min_logit_gap": round(min(gaps), 6),
        "special_tokens": {"bos": 1, "eos": 2, "pad": 3, "unk": 0},
        "generation": {
            "method": "transformers generate(do_sample=False, max_new_tokens=20), PyTorch, fp32",
            "max_new_tokens": MAX_NEW_TOKENS, "eos_token_id": 2, "pad_token_id": 3,
            "stop_strings_applied": False,
            "note": "output_ids stop after </s> if produced; the manifest's stop strings are NOT "
                    "applied here. prompt_ids already start with <s> (the tokenizer's "
                    "post-processor adds it). Batched rows are left-padded; position_ids = "
                    "cumsum(attention_mask) - 1 (pad positions set to 1), as generate() does. "
                    "prefix_len = number of prompt_ids (with <s>) that the template text before "
                    "its first placeholder tokenizes to; the build checks that prefilling them "
                    "as one chunk and the rest as a second chunk gives the same tokens.",
        },
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "onnxruntime": ort.__version__},
        "model_onnx_sha256": sha256(out_dir / "model.onnx"),
        "prompts": singles,
        "batches": batches,
    }
    (out_dir / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False)
                                           + "\n")
    size = sum(p.stat().st_size for p in out_dir.iterdir() if p.is_file())
    print(f"[{name}] wrote {out_dir.relative_to(REPO)} ({size / 1e6:.2f} MB, {n_params} params) "
          f"in {time.time() - t0:.1f}s", flush=True)
    return {"name": name, "size": size, "params": n_params, "io": io}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=sorted(MODELS), action="append",
                    help="build only this model (repeatable)")
    ap.add_argument("--keep-workdir", action="store_true",
                    help="keep the temporary PyTorch checkpoints and raw exports")
    args = ap.parse_args()
    names = args.only or DEFAULT_MODELS

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    t0 = time.time()
    tok = build_tokenizer()
    print(f"tokenizer: vocab {tok.get_vocab_size()}; prompt sizes: "
          + ", ".join(f"{n}={len(tok.encode(render(r, f)).ids)}" for n, r, f in PROMPTS),
          flush=True)
    for role, t in TEMPLATES.items():
        prefix = t.split("{")[0]
        print(f"  {role} preamble (cacheable prefix): {len(tok.encode(prefix).ids)} tokens")

    workdir = Path(tempfile.mkdtemp(prefix="stepwire-models-"))
    try:
        for n in names:
            build_model(n, tok, workdir)
    finally:
        if args.keep_workdir:
            print(f"workdir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"done in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
