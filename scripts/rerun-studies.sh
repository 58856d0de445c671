#!/usr/bin/env bash
# Reruns every study whose results the docs show, from nothing, then publishes their reports into
# docs/studies/reports/ and regenerates the tables of the docs pages from them:
#   bash scripts/rerun-studies.sh [RUNS]      (default runs/studies)
# Each study is an ordinary `ilf demo NAME` (or `ilf compare`, `ilf study`) run into RUNS/NAME,
# sharing one world-model cache in RUNS/world-cache; the folders of earlier runs of these studies
# under RUNS are removed first. The time each took is printed and kept in RUNS/times.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-runs/studies}"
ilf="${ILF:-.venv/bin/ilf}"
python="${PYTHON:-.venv/bin/python}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# the settings of peers come from peers_tuning, and those of code from code_tuning, each run before it (they read only
# development seeds and validation data)
studies=(demo rounds candidates weak_refiner peers_tuning peers code_tuning code)
mkdir -p "$runs"
for name in "${studies[@]}" compare_offline code_study world-cache; do
  rm -rf "${runs:?}/$name"  # from nothing: only the folders this script writes
done
: > "$runs/times.txt"
timed() {  # NAME COMMAND...: run it, and note how long it took
  local name="$1" start
  shift
  start=$(date +%s)
  "$@"
  echo "$name $(( $(date +%s) - start )) s" | tee -a "$runs/times.txt"
}
for study in "${studies[@]}"; do
  timed "$study" "$ilf" demo "$study" --run-dir "$runs/$study"
done
cache="$(realpath "$runs")/world-cache"
timed compare_offline "$ilf" compare experiments/compare_offline.yaml --run-dir "$runs/compare_offline" --set "pretraining.cache_dir=$cache"
timed code_study "$ilf" study experiments/code_study.yaml --run-dir "$runs/code_study"
echo "all $(awk '{s += $2} END {print s}' "$runs/times.txt") s" | tee -a "$runs/times.txt"
"$python" -m ilf.docs_tables --publish "$runs"
