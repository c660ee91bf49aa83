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
# GGML_NATIVE=ON compiles for every feature the CPU reports. Virtual machines may report AMX
# without enabling it (seen on an Intel Xeon of this kind: "Illegal instruction" on Q8_0 models),
# so where the CPU reports AMX the features are listed by hand with AMX off.
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { [[ " $cpu_flags " == *" $1 "* ]] && echo ON || echo OFF; }
if [[ " $cpu_flags " == *" amx_tile "* ]]; then
  isa=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA="$(has fma)" -DGGML_F16C="$(has f16c)"
    -DGGML_AVX512="$(has avx512f)" -DGGML_AVX512_VBMI="$(has avx512vbmi)" -DGGML_AVX512_VNNI="$(has avx512_vnni)"
    -DGGML_AVX512_BF16="$(has avx512_bf16)" -DGGML_AVX_VNNI="$(has avx_vnni)"
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
else
  isa=(-DGGML_NATIVE=ON)
fi
echo "building llama.cpp with ${isa[*]}" >&2
cmake -S "$dir" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  "${isa[@]}" -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DBUILD_SHARED_LIBS=ON >&2
cmake --build "$dir/build" -j "$(nproc)" --target llama-server llama-bench llama-quantize llama-finetune llama-perplexity >&2
echo "$dir/build/bin"
