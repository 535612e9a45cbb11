#!/bin/sh
# Install what the code-verification sandbox needs (Debian/Ubuntu, as root): bubblewrap, and
# util-linux's setpriv/unshare (normally present). Idempotent: does nothing when all are there.
# Without a working bubblewrap, code verification refuses to run (isolation=auto); the weaker tiers
# (isolation=unshare|none) must be chosen explicitly and still run the candidate unprivileged.
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
# Check that it works here with the features the sandbox uses (containers may forbid namespaces;
# bubblewrap older than 0.8 lacks --size for a bounded scratch tmpfs).
if bwrap --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 \
        --proc /proc --dev /dev --perms 1777 --size 1048576 --tmpfs /tmp \
        --unshare-net --unshare-pid --unshare-ipc --die-with-parent --new-session true 2>/dev/null; then
    echo "sandbox: bwrap works (private root, sized tmpfs, no network, pid namespace)"
else
    echo "sandbox: bwrap is installed but cannot run the sandbox here (namespaces forbidden, or bwrap < 0.8);" \
         "code verification will refuse to run until it can (or choose isolation=unshare|none explicitly)" >&2
fi
