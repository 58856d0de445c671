#!/usr/bin/env bash
# Create the environment, check lint and format (ruff) and the import contracts (import-linter), and
# run the test suite (what CI runs).
# Extra arguments go to pytest.
#
# Besides the Python environment, the tests use four real components, installed here:
#   - a Label Studio server, in a virtual environment of its own (`ilf labelstudio install`);
#   - Debian's Chromium, driven by Playwright for the browser test;
#   - bubblewrap, the sandbox generated programs run in (read-only file system, no network);
#   - Debian's slurm-wlm, for a one-node SLURM the study executor's test starts and stops.
# If one cannot be installed the dependent tests skip with a loud banner; everything else runs
# (without bubblewrap the sandbox refuses to run programs, so the code tests fail with its one-line
# refusal, which says how to install it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh test
venv=${ILF_VENV:-.venv}

banner() { printf '\n%s\n%s\n%s\n\n' "$(printf '!%.0s' {1..78})" "$*" "$(printf '!%.0s' {1..78})"; }

if ! "$venv/bin/ilf" labelstudio install; then
  banner "LABEL STUDIO COULD NOT BE INSTALLED: the Label Studio tests will be skipped"
fi
if ! command -v chromium >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || banner "CHROMIUM COULD NOT BE INSTALLED: the browser test will be skipped"
  else
    banner "CHROMIUM IS MISSING (apt-get install chromium as root): the browser test will be skipped"
  fi
fi

if ! command -v bwrap >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
      || banner "BUBBLEWRAP COULD NOT BE INSTALLED: the sandbox isolation tests will be skipped"
  else
    banner "BUBBLEWRAP IS MISSING (apt-get install bubblewrap as root): the sandbox isolation tests will be skipped"
  fi
fi

if ! command -v slurmctld >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm >/dev/null) \
      || banner "SLURM COULD NOT BE INSTALLED: the one-node SLURM test will be skipped"
  else
    banner "SLURM IS MISSING (apt-get install slurm-wlm as root): the one-node SLURM test will be skipped"
  fi
fi

# Style holds without anyone policing it: lint and format are checked before the tests run.
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
# The architecture holds the same way: core names no plug-in, and no package imports in a circle
# (the contracts are in pyproject.toml, [tool.importlinter]).
"$venv/bin/lint-imports"

# The docs site builds with --strict: a broken link or anchor, or a page missing from the navigation,
# fails here (the generated reference pages and the docs' commands are checked by the tests).
site=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 "$venv/bin/mkdocs" build --strict --site-dir "$site"
rm -rf "$site"

export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false
exec "$venv/bin/python" -m pytest -q "$@"
