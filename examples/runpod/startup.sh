#!/usr/bin/env bash
# Provisions a GPU pod's models from the manifest and lock committed next to this script,
# then starts the app. Safe to run on every start: with nothing to do it takes milliseconds,
# and after a preempted pod it resumes the downloads left on the persistent volume.
#
#   WORKSPACE      the persistent volume (default /workspace); the store and mlib's state
#                  live there, so a new pod re-downloads nothing
#   MLIB_FILE      the manifest (default $WORKSPACE/models.yaml, its lock next to it)
#   MLIB_BIN       where the mlib binary is kept (default $WORKSPACE/bin/mlib)
#   MLIB_URL       where to download the binary from when MLIB_BIN is missing (a release
#                  asset or your own mirror); without it, a missing binary is an error
#   HF_TOKEN, CIVITAI_TOKEN  read by mlib, never printed
#
# Usage, as the pod's start command:  bash startup.sh python main.py --listen
set -euo pipefail

WORKSPACE=${WORKSPACE:-/workspace}
export MLIB_FILE=${MLIB_FILE:-$WORKSPACE/models.yaml}
MLIB_BIN=${MLIB_BIN:-$WORKSPACE/bin/mlib}

if [[ ! -x "$MLIB_BIN" ]]; then
    if [[ -z "${MLIB_URL:-}" ]]; then
        echo "startup: no mlib at $MLIB_BIN; set MLIB_URL to download it, or copy it there" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$MLIB_BIN")"
    # Downloaded beside its final name and renamed: a pod killed mid-download never leaves
    # a half binary where the next start would run it.
    curl -fsSL --retry 5 -o "$MLIB_BIN.part" "$MLIB_URL"
    chmod +x "$MLIB_BIN.part"
    mv -f "$MLIB_BIN.part" "$MLIB_BIN"
fi

# --locked: exactly what the committed lock pins, nothing resolved anew. A network failure
# is retried by mlib itself; a second attempt here covers a pod whose network comes up late.
for attempt in 1 2 3; do
    if "$MLIB_BIN" apply --auto-approve --locked; then
        break
    fi
    if [[ $attempt == 3 ]]; then
        echo "startup: mlib apply failed 3 times; the app starts with the models it has" >&2
        break
    fi
    sleep $((attempt * 10))
done

if [[ $# -gt 0 ]]; then
    exec "$@"
fi
