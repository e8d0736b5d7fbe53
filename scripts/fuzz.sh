#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, cargo-fuzz with libFuzzer) for a time budget each.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 60 s, every target
#
# cargo-fuzz needs nightly compiler flags (sanitizers); on the stable toolchain this script
# enables them with RUSTC_BOOTSTRAP=1. Install the runner once: `cargo install cargo-fuzz`.
# Corpora grow in fuzz/corpus/<target> (seeded from fuzz/seeds/<target>); a crash is written
# to fuzz/artifacts/<target>/ and fails the run. Every crash found becomes a regression test.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden/fuzz-target}"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t: ${seconds}s"
  cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 2>&1 \
    | grep -E "^(Done|stat::number_of_executed_units|SUMMARY)|panicked" || true
  if [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
    echo "$t: crash written to fuzz/artifacts/$t" >&2
    exit 1
  fi
done
