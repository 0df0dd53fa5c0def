#!/usr/bin/env bash
# llama.cpp for the large-model benchmark (scripts/bench-large.sh calls this), idempotently:
#  1. llama-cpp-python (requirements/llamacpp.txt) built from PyPI's sdist, CPU only, with
#     -march=native, into its own venv .cache/llamacpp/venv (.venv only gains sentencepiece, which
#     the converter imports: requirements/llamacpp-convert.txt);
#  2. each model's random-weight checkpoint (.cache/large/<name>-hf) converted to GGUF f32 by the
#     converter the sdist vendors (convert_hf_to_gguf.py, run by scripts/gguf.py) and quantised to
#     Q4_0 (block 32, symmetric: llama.cpp's closest to the ONNX int4), as
#     .cache/large/<name>-gguf-f32.gguf and <name>-gguf-q4_0.gguf.
# Each step is skipped when its output exists (the build has a stamp of requirements/llamacpp.txt).
#
#   scripts/build-llamacpp.sh                       # build, then convert both models
#   scripts/build-llamacpp.sh qwen2.5-0.5b          # build, then convert one
#   JOBS=2 scripts/build-llamacpp.sh                # compile jobs (default 2), run at nice 10
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case "${1:-}" in -h|--help) sed -n '2,14p' "$0"; exit 0 ;; esac
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(qwen2.5-0.5b llama-3.2-1b)
: "${JOBS:=2}"
dir="$root/.cache/llamacpp"
venv="$dir/venv"
version=$(sed -n 's/^llama-cpp-python==//p' requirements/llamacpp.txt)
sdist="$dir/llama_cpp_python-$version.tar.gz"
src="$dir/llama_cpp_python-$version"
log() { printf '[build-llamacpp] %s\n' "$*" >&2; }

# The sdist: PyPI's file (pip download), kept for its vendored converter.
if [ ! -f "$sdist" ]; then
  mkdir -p "$dir"
  log "downloading llama-cpp-python $version's sdist from PyPI"
  .venv/bin/pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$dir"
fi
if [ ! -f "$src/vendor/llama.cpp/convert_hf_to_gguf.py" ]; then
  tar -xzf "$sdist" -C "$dir"
fi

stamp="$venv/.stepwire-llamacpp.sha256"
want=$(sha256sum requirements/llamacpp.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  [ -x "$venv/bin/python" ] || .venv/bin/python -m venv "$venv"
  grep -v '^llama-cpp-python==' requirements/llamacpp.txt > "$dir/deps.txt"
  "$venv/bin/pip" install --quiet -r "$dir/deps.txt"
  log "building llama-cpp-python $version from source (CPU, $JOBS jobs at nice 10: about 10 minutes on 2 cores)"
  # Only the libraries the bindings load: no multimodal library, tools, tests or examples.
  CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_BLAS=OFF -DLLAVA_BUILD=OFF \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF" \
  CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" nice -n 10 \
    "$venv/bin/pip" install --quiet --no-build-isolation --no-deps "$sdist"
  "$venv/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)' >/dev/null
  echo "$want" > "$stamp"
  log "llama-cpp-python $version built"
fi

# The converter needs torch, transformers, safetensors: .venv has them (requirements/train.txt);
# a second torch from PyPI would be another ~3 GB of CUDA wheels. Its own gguf-py comes first.
if ! .venv/bin/python -c 'import sentencepiece' 2>/dev/null; then
  .venv/bin/pip install --quiet -r requirements/llamacpp-convert.txt
fi
for name in "${names[@]}"; do
  hf=".cache/large/$name-hf"
  f32=".cache/large/$name-gguf-f32.gguf"
  q4=".cache/large/$name-gguf-q4_0.gguf"
  [ -d "$hf" ] || { log "$hf missing (scripts/build-large-models.py --only $name makes it)"; exit 1; }
  if [ ! -f "$f32" ]; then
    .venv/bin/python scripts/gguf.py convert --converter "$src/vendor/llama.cpp" --model "$hf" --out "$f32"
  fi
  if [ ! -f "$q4" ]; then
    "$venv/bin/python" scripts/gguf.py quantize --model "$f32" --out "$q4" --threads "$JOBS"
  fi
done
