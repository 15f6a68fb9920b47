#!/usr/bin/env bash
# Side-by-side throughput of ascent and the PyTorch reference (shared/peers/torch_ref.py) in one
# sitting, interleaved run by run so both see the same machine load. Prints markdown table rows.
# Usage: scripts/bench.sh [path/to/torch_ref.py]   (needs: pip install torch safetensors)
set -euo pipefail
cd "$(dirname "$0")/.."
ref="${1:-../shared/peers/torch_ref.py}"
cargo build --release -q -p cli
bin=target/release/ascent

field() { sed -n "s/.*tokens_per_s \([0-9]*\).*/\1/p"; }
mfu() { sed -n "s/.* mfu \([0-9.]*\).*/\1/p"; }

echo "| config | threads | mode | PyTorch tokens/s | ascent tokens/s | ratio | ascent MFU |"
echo "|---|---|---|---|---|---|---|"
for cfg in "default:" "ladder:--dim 128 --ff 344 --batch 32"; do
  name="${cfg%%:*}"; flags="${cfg#*:}"
  for th in 1 2; do
    for mode in train "generate --batch 1" "generate --batch 32"; do
      # shellcheck disable=SC2086
      mflags="$flags"
      [[ "$mode" == generate* ]] && mflags="${flags/--batch 32/}"
      t=$(python3 "$ref" $mode $mflags --threads "$th" | grep RESULT | field)
      a_line=$($bin bench $mode $mflags --threads "$th" 2>/dev/null | grep RESULT)
      a=$(echo "$a_line" | field); m=$(echo "$a_line" | mfu)
      ratio=$(python3 -c "print(f'{$a/$t:.2f}×')")
      echo "| $name | $th | $mode | $t | $a | $ratio | $m |"
    done
  done
done
