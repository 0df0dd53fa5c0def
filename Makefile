# The two commands of the quick start. Both install what they need (scripts/setup.sh) first.
.PHONY: demo test setup bench schemas

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

schemas:
	cargo run -q -p stepwire-runtime -- schema
