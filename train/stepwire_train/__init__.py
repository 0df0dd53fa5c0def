"""stepwire_train: recordings of `stepwire run --record` -> STEP-HRL policies (BC, offline RL, ONNX export).

Modules (one job each): records (read + validate recordings), manifest (role templates),
render (fields and prompts, byte-identical to the runtime), dataset (records -> samples),
history (full-history baseline), tokenizer, model, packing (samples -> packed batches),
trainer (shared loop: progress bar, checkpoints, curves), bc, rl, export, report.
"""

__version__ = "0.1.0"
