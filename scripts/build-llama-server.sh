#!/usr/bin/env bash
# Builds llama.cpp's reference tools (llama-server, llama-bench, llama-quantize, llama-finetune,
# llama-perplexity) from the source bundled in node-llama-cpp's package, OUTSIDE the repository, for
# `npm run bench:serve` and `npm run bench:finetune`.
# Cached: a second run with the binaries present does nothing.
# Usage: scripts/build-llama-server.sh [DIR]   (default: ~/.cache/grove/llama.cpp)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${GROVE_LLAMA_CPP_DIR:-$HOME/.cache/grove/llama.cpp}}
bundle="$here/node_modules/node-llama-cpp/llama/gitRelease.bundle"
if [ -x "$dir/build/bin/llama-server" ] && [ -x "$dir/build/bin/llama-bench" ] && [ -x "$dir/build/bin/llama-quantize" ] \
  && [ -x "$dir/build/bin/llama-finetune" ] && [ -x "$dir/build/bin/llama-perplexity" ]; then
  echo "$dir/build/bin"; exit 0
fi
[ -f "$bundle" ] || { echo "missing $bundle: run npm ci first" >&2; exit 1; }
command -v cmake >/dev/null || { echo "cmake is needed (apt-get install cmake)" >&2; exit 1; }
if [ ! -d "$dir/.git" ]; then
  mkdir -p "$(dirname "$dir")"
  git clone --quiet "$bundle" "$dir"
fi
cmake -S "$dir" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON >&2
cmake --build "$dir/build" -j "$(nproc)" --target llama-server llama-bench llama-quantize llama-finetune llama-perplexity >&2
echo "$dir/build/bin"
