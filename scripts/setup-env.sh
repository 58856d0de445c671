#!/usr/bin/env bash
# Create the virtual environment .venv (if missing) and install ilf into it.
#
#   bash scripts/setup-env.sh          # the package
#   bash scripts/setup-env.sh test     # the package and the test tools
#   bash scripts/setup-env.sh docs     # the package and MkDocs (any extras, comma-separated)
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

# Generated programs (the code task) run inside bubblewrap, and ilf refuses to run them without
# it unless a config opts out by name (task.options.isolation: unsafe_process). Install it where
# this script may; ILF_NO_BWRAP=1 skips that.
if [[ -z ${ILF_NO_BWRAP:-} ]] && ! command -v bwrap >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing bubblewrap, the sandbox of generated programs (apt-get install bubblewrap)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
      || echo "bubblewrap could not be installed: code tasks will refuse to run programs until it is (apt-get install bubblewrap)" >&2
  else
    echo "bubblewrap is missing: code tasks will refuse to run programs until it is installed" \
      "(as root: apt-get install bubblewrap, or dnf/pacman install bubblewrap)" >&2
  fi
fi
