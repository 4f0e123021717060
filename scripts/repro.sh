#!/usr/bin/env bash
# The whole reproduction study: the three repro-*.rhai scripts in order, one teacher (trained by
# the first, loaded by the others), each putting its section into docs/results/reproduction.md.
#   scripts/repro.sh                # Fashion-MNIST (needs Debian's dataset-fashion-mnist)
#   scripts/repro.sh quick          # the same on the bundled digits, into target/repro-quick.md
# Run records go to runs/repro-<time>-<script>/ (see `retort runs compare`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
retort=target/release/retort
stamp=$(date -u +%Y%m%d-%H%M%S)
if [ "${1:-}" = quick ]; then
    sets=(--set quick=true); report=target/repro-quick.md; stamp="$stamp-quick"
else
    sets=(); report=docs/results/reproduction.md
fi
first=runs/repro-$stamp-accuracy
"$retort" run scripts/repro-accuracy.rhai --quiet "${sets[@]}" --out "$first" --report "$report"
for study in regularization filtering; do
    "$retort" run "scripts/repro-$study.rhai" --quiet "${sets[@]}" --set "teacher=$first/teacher.safetensors" \
        --out "runs/repro-$stamp-$study" --report "$report"
done
echo "report: $report"
