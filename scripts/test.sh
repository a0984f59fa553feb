#!/usr/bin/env bash
# Builds and runs the whole test suite; the command .ci/run calls.
#
#  1. a warnings-as-errors build with gcc: unit tests (cmocka), integration
#     tests (real pantalad, real agent, real UDP and HTTP on loopback);
#  2. the static agent (musl, PT_AGENT_STATIC): built alone and checked
#     (static ELF, --once, signed frames, RSS), seconds;
#  3. a clang build with AddressSanitizer + UndefinedBehaviorSanitizer: the
#     same tests again, plus the libFuzzer targets for a bounded time
#     (PT_FUZZ_SECONDS, default 60 s per target).
#
# Usage: scripts/test.sh [--quick]   (--quick: skip the sanitizer build)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${PT_FUZZ_SECONDS:-60}

bash scripts/deps.sh

step() { printf '\n=== %s ===\n' "$*"; }

step "build (gcc, -Werror)"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPT_WERROR=ON >/dev/null
cmake --build build-test -j"$JOBS"
step "tests (gcc build)"
(cd build-test && ctest --output-on-failure -j"$JOBS" --timeout 600)

step "static agent (musl)"
cmake -S . -B build-static -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPT_WERROR=ON \
  -DPT_AGENT_STATIC=ON >/dev/null
cmake --build build-static -j"$JOBS"
(cd build-static && ctest --output-on-failure -j"$JOBS" --timeout 120)

if [ "${1:-}" = "--quick" ]; then exit 0; fi

step "build (clang, ASan+UBSan, fuzzers)"
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPT_WERROR=ON \
  -DPT_SANITIZE=address,undefined -DPT_FUZZ=ON -DPT_FUZZ_SECONDS="$FUZZ_SECONDS" >/dev/null
cmake --build build-asan -j"$JOBS"
step "tests (sanitizers) and fuzzing (${FUZZ_SECONDS}s per target)"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure -j"$JOBS" --timeout 900)
echo
echo "all tests passed"
