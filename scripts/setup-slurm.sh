#!/usr/bin/env bash
# Sets up a real single-node Slurm cluster on this machine, so tests can submit jobs with `sbatch`/`srun`:
#  1. Debian's slurm-wlm (slurmctld, slurmd, the client commands) and munge (Slurm's authentication);
#  2. a munge key, and munged running (as the `munge` user);
#  3. /etc/slurm/slurm.conf for one node named after `hostname -s` (CPUs = nproc, RealMemory a bit under
#     MemTotal), one partition `debug`; no cgroups (proctrack/linuxproc, task/none), no accounting;
#  4. slurmctld and slurmd running as root, and the node up (a down/drained node is resumed).
# Written for a root shell in a container or VM without systemd: the daemons are started directly, not as
# services. Idempotent: what is installed, written or running is left alone, so a second run only confirms.
# A slurm.conf that this script did not write (no header line below) is never touched.
#   scripts/setup-slurm.sh          set up (or confirm) and print one line: nodes, CPUs, state, partition
#   scripts/setup-slurm.sh --stop   stop slurmd, slurmctld and munged (jobs still running are killed)
set -euo pipefail

say() { printf '[setup-slurm] %s\n' "$*"; }
die() { say "error: $*" >&2; exit 1; }

CONF=/etc/slurm/slurm.conf
MARK="# Written by scripts/setup-slurm.sh (r2b). Edit freely after deleting this line; the script then leaves it alone."
MUNGE_KEY=/etc/munge/munge.key
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
LOG_DIR=/var/log/slurm
WAIT_S=${R2B_SLURM_WAIT_S:-60}

NODE=$(hostname -s 2>/dev/null || uname -n)
NODE=${NODE%%.*}

# A daemon is running when its pid file names a live process with the expected name.
running() { # running PIDFILE NAME
  local pid
  pid=$(cat "$1" 2>/dev/null || true)
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$2" ]
}

stop_daemon() { # stop_daemon PIDFILE NAME: SIGTERM, then up to 10 s for it to exit, then SIGKILL
  local pid i
  running "$1" "$2" || { say "$2 is not running"; return 0; }
  pid=$(cat "$1")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 20); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$1"
  say "stopped $2 (pid $pid)"
}

if [ "${1:-}" = "--stop" ]; then
  # Jobs first: their slurmstepd processes outlive slurmd by design (so slurmd can restart under running
  # jobs), so stopping only the daemons would leave them running. scancel sends SIGTERM, then SIGKILL after
  # KillWait (30 s); wait up to 45 s for the queue to empty.
  if running "$CTLD_PID" slurmctld && [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
    say "cancelling all jobs: $(squeue -h -o %i | tr '\n' ' ')"
    scancel $(squeue -h -o %i) 2>/dev/null || true
    for _ in $(seq 1 45); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 1
    done
    [ -z "$(squeue -h -o %i 2>/dev/null)" ] || say "warning: jobs still in the queue: $(squeue -h -o '%i %T' | tr '\n' ' ')"
  fi
  stop_daemon "$SLURMD_PID" slurmd
  stop_daemon "$CTLD_PID" slurmctld
  stop_daemon "$MUNGE_PID" munged
  exit 0
elif [ $# -gt 0 ]; then
  die "usage: $0 [--stop]"
fi

[ "$(id -u)" -eq 0 ] || die "run this script as root: it installs Debian packages and starts the Slurm daemons as root"

# ---- 1. packages --------------------------------------------------------------------------------------
need=()
command -v slurmctld >/dev/null 2>&1 || need+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || need+=(slurmd)
command -v sbatch >/dev/null 2>&1 || need+=(slurm-client)
command -v munged >/dev/null 2>&1 || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
  [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1 ||
    die "not a Debian/Ubuntu system: install Slurm (slurmctld, slurmd, the client) and munge yourself"
  say "installing slurm-wlm and munge"
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -newer /etc/hostname 2>/dev/null | head -1)" ] ||
    apt-get update -qq
  # No recommends: they would add ~30 optional plugin packages (HDF5, InfluxDB, IPMI, ROCm SMI ...).
  # A policy-rc.d (Docker's default) keeps the packages from starting services; we start the daemons below.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 \
    slurm-wlm munge >/dev/null
fi

# ---- 2. munge -----------------------------------------------------------------------------------------
# munged wants its directories owned by `munge` and not writable by others; /run/munge is normally made by
# systemd's tmpfiles, so create it here.
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s "$MUNGE_KEY" ]; then
  say "creating the munge key $MUNGE_KEY"
  mungekey --create --keyfile="$MUNGE_KEY"
fi
chown munge:munge "$MUNGE_KEY"
chmod 0400 "$MUNGE_KEY"
if ! running "$MUNGE_PID" munged; then
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID" </dev/null >/dev/null 2>&1 ||
    die "munged did not start; see /var/log/munge/munged.log"
fi
munge -n </dev/null | unmunge >/dev/null 2>&1 || die "munge does not work (munge -n | unmunge); see /var/log/munge/munged.log"

# ---- 3. slurm.conf ------------------------------------------------------------------------------------
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.95 }' /proc/meminfo) # slurmd drains a node whose real memory is under this
write_conf() {
  cat <<CONF
$MARK
# A single-node cluster for tests: node $NODE, $cpus CPUs, ${mem_mb} MB, partition debug.
ClusterName=r2b
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
# No cgroups in a container: processes are tracked through their parent pids, tasks are not bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
# Cores are the consumable resource; memory is not (a job without --mem does not take the whole node).
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Refuse at submission a job that could never run here (more nodes or CPUs than the partition has), rather
# than leaving it pending forever.
EnforcePartLimits=ALL
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# A node that was down comes back by itself when slurmd registers with a valid configuration.
ReturnToService=2
# scancel sends SIGTERM to the job's steps, then SIGKILL KillWait seconds later.
KillWait=30
MailProg=/bin/true
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
}
conf_changed=0
if [ ! -e "$CONF" ] || head -1 "$CONF" | grep -qxF "$MARK"; then
  new=$(write_conf)
  if [ "$new" != "$(cat "$CONF" 2>/dev/null || true)" ]; then
    say "writing $CONF (node $NODE, $cpus CPUs, ${mem_mb} MB)"
    install -d -m 0755 /etc/slurm
    printf '%s\n' "$new" >"$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
    conf_changed=1
  fi
else
  say "$CONF was not written by this script; leaving it as it is"
fi
install -d -m 0755 /var/spool/slurmctld /var/spool/slurmd "$LOG_DIR"

# ---- 4. daemons ---------------------------------------------------------------------------------------
if [ "$conf_changed" = 1 ] && { running "$CTLD_PID" slurmctld || running "$SLURMD_PID" slurmd; }; then
  # The node line or the hostname changed under running daemons: restart them on the new configuration.
  say "slurm.conf changed; restarting slurmd and slurmctld"
  stop_daemon "$SLURMD_PID" slurmd >/dev/null
  stop_daemon "$CTLD_PID" slurmctld >/dev/null
fi
# Both daemons fork into the background themselves; their output goes to the log files above.
if ! running "$CTLD_PID" slurmctld; then
  say "starting slurmctld"
  slurmctld </dev/null >>"$LOG_DIR/slurmctld.out" 2>&1 || die "slurmctld did not start; see $LOG_DIR/slurmctld.log"
fi
if ! running "$SLURMD_PID" slurmd; then
  say "starting slurmd"
  slurmd </dev/null >>"$LOG_DIR/slurmd.out" 2>&1 || die "slurmd did not start; see $LOG_DIR/slurmd.log"
fi

# Wait for the node to be usable: idle, or already running jobs (mixed/allocated/completing).
state="" resumed=0
for _ in $(seq 1 "$WAIT_S"); do
  state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1 || true)
  case "$state" in
  idle | mixed | allocated | completing) break ;;
  down* | drain* | fail*)
    # Down (e.g. slurmd was not responding earlier) or drained: put it back in service, once.
    if [ "$resumed" = 0 ]; then
      say "node $NODE is $state; resuming it"
      scontrol update nodename="$NODE" state=resume 2>/dev/null || true
      resumed=1
    fi
    ;;
  esac
  sleep 1
done
case "$state" in
idle | mixed | allocated | completing) ;;
*)
  reason=$(sinfo -h -n "$NODE" -o %E 2>/dev/null || true)
  die "node $NODE is not up after ${WAIT_S}s (state: ${state:-no answer from slurmctld}${reason:+, reason: $reason}); see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log"
  ;;
esac

ncpus=$(sinfo -h -n "$NODE" -o %c | head -1)
nnodes=$(sinfo -h -p debug -o %D | head -1)
echo "slurm: $nnodes node ($NODE, $ncpus CPUs) $state, partition debug ($(sinfo -V))"
