#!/usr/bin/env bash
# Create the virtual environment .venv (if missing) and install ilf into it.
#
#   bash scripts/setup-env.sh          # the package
#   bash scripts/setup-env.sh test     # the package and the test tools
#
# On a machine without an NVIDIA GPU, constraints-cpu.txt pins the CPU build of torch (and
# numpy<2.3), so pip does not pull gigabytes of CUDA wheels. Set ILF_CONSTRAINTS to another file,
# or to "none", to change that. ILF_VENV picks another environment folder.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${ILF_VENV:-.venv}
python=${PYTHON:-python3}
extras=${1:-}

if [[ -z ${ILF_CONSTRAINTS:-} ]]; then
  if command -v nvidia-smi >/dev/null 2>&1; then ILF_CONSTRAINTS=none; else ILF_CONSTRAINTS=constraints-cpu.txt; fi
fi
constraint_args=()
[[ $ILF_CONSTRAINTS != none ]] && constraint_args=(-c "$ILF_CONSTRAINTS")

[[ -x $venv/bin/python ]] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
target=.
[[ -n $extras ]] && target=".[$extras]"
"${pip[@]}" "${constraint_args[@]}" -e "$target"
echo "ilf installed in $venv ($("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
