#!/bin/bash
# Runs rsyslogd and a real sshd for tests/sshlab.py, isolated from the host.
#
# tests/sshlab.py starts this as PID 1 of private mount and PID namespaces inside the lab's
# server network namespace:
#   ip netns exec SERVER unshare --mount --propagation private --pid --fork --kill-child \
#       --mount-proc /bin/bash tests/sshlab-launch.sh WORKDIR
# so /dev/log, /run/sshd and every daemon started here exist only in this namespace, and all
# of them die when unshare (and with it this PID 1) dies. WORKDIR holds the configs that
# sshlab.py wrote (rsyslog.conf, sshd_config, host keys); nothing else comes from outside.
# The steps shared with tests/ftplab-launch.sh are in tests/lab-launch-common.sh.
set -euo pipefail
# shellcheck source=lab-launch-common.sh source-path=SCRIPTDIR
source "$(dirname "$(readlink -f "$0")")/lab-launch-common.sh"

work=${1:?usage: sshlab-launch.sh ABSOLUTE_WORKDIR}
check_launch_args sshlab-launch "$work"

# A private /dev, with an own devpts for sshd's sessions.
make_private_dev "$work" sshlab --devpts

# A private /run: sshd needs /run/sshd (its privilege-separation directory).
make_private_run sshlab /run/sshd

start_rsyslogd sshlab-launch "$work"
start_daemon /usr/sbin/sshd -D -f "$work/sshd_config"

# Either daemon exiting on its own is a failure of the lab: say so, stop the other.
supervise_daemons sshlab-launch
