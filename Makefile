# The two commands of the quick start. Both install what they need (scripts/setup.sh) first.
.PHONY: demo test setup bench bench-large bench-ray schemas

## An agent playing a real environment with the bundled policy.
demo:
	@scripts/demo.sh

## Every test: Rust, Python, schemas, conformance of every bridge, real episodes.
test:
	@scripts/test.sh

setup:
	@scripts/setup.sh

## Benchmarks (release build): stepwire vs a Python onnxruntime loop, bridge vs bare ScienceWorld.
bench:
	@scripts/bench.sh

## Large shapes (Qwen2.5-0.5B, Llama-3.2-1B; fp32, int4): stepwire vs onnxruntime-genai vs the Python loop, vs the machine's limits.
bench-large:
	@scripts/bench-large.sh

## Episodes per minute: stepwire run --jobs N vs the same run on a local Ray cluster of 1 and N worker nodes.
bench-ray:
	@scripts/setup.sh && cargo build -q -p stepwire-runtime && STEPWIRE_BIN=target/debug/stepwire .venv/bin/python bench/ray_run.py

schemas:
	cargo run -q -p stepwire-runtime -- schema
