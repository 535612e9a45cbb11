#!/bin/sh
# Install what the code-verification sandbox needs (Debian/Ubuntu, as root): bubblewrap, and
# util-linux's setpriv/unshare (normally present). Idempotent: does nothing when all are there.
# Without bubblewrap, the sandbox falls back to weaker tiers and says so in every verdict's detail.
set -eu
missing=""
command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
command -v setpriv >/dev/null 2>&1 || missing="$missing util-linux"
command -v unshare >/dev/null 2>&1 || missing="$missing util-linux"
if [ -z "$missing" ]; then
    echo "sandbox: bubblewrap and util-linux already installed"
else
    if [ "$(id -u)" -ne 0 ]; then
        echo "sandbox: need root to install:$missing (run: sudo sh $0)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
fi
# Check that it works here (containers may forbid namespaces).
if bwrap --ro-bind / / --unshare-net --unshare-pid --die-with-parent true 2>/dev/null; then
    echo "sandbox: bwrap works (read-only fs, no network, pid namespace)"
else
    echo "sandbox: bwrap is installed but cannot create namespaces here; verdicts will name the weaker protections in force" >&2
fi
