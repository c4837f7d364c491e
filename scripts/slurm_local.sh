#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the tests of the slurm executor (run as root,
# no systemd): munged as the munge user, slurmctld and slurmd with a minimal slurm.conf.
#   scripts/slurm_local.sh start   # writes $SLURM_LOCAL (default /tmp/bakeoff-slurm), starts the daemons
#   scripts/slurm_local.sh stop    # stops them by their PID files
# Installs Debian's slurm-wlm and munge first when sbatch is missing (CI: a fresh machine).
set -euo pipefail
DIR="${SLURM_LOCAL:-/tmp/bakeoff-slurm}"
CONF=/etc/slurm/slurm.conf

install() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
}

start() {
  install
  mkdir -p "$DIR"/{spool,state,log} /etc/slurm /run/munge /var/log/munge /var/lib/munge /etc/munge
  host="$(hostname -s)"
  # the machine's cores: GNU nproc also answers OMP_NUM_THREADS, which the tests set to 1 per pytest worker (a
  # 1-CPU node never starts a 2-task DDP job: "PartitionConfig", pending for ever)
  cpus="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
  mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
  new_conf="$(mktemp)"
  cat > "$new_conf" <<CONF
ClusterName=bakeoff
SlurmctldHost=$host
AuthType=auth/munge
# a requeued (pre-empted) job waits cred_expire seconds before it starts again (default 120): the tests requeue
AuthInfo=cred_expire=10
# and then for the next scheduling pass (defaults: 60 s main, 30 s backfill)
SchedulerParameters=sched_interval=2,bf_interval=2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SlurmdSpoolDir=$DIR/spool
StateSaveLocation=$DIR/state
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmUser=root
ReturnToService=2
JobRequeue=1
MinJobAge=600
KillWait=5
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  # A cluster already up with this very configuration is left running: restarting it would fail the jobs of
  # another test session on this machine (a second pytest beside CI's, say) with "Unable to contact slurm
  # controller". The caller learns from the last line that it did not start it, and leaves it running.
  if cmp -s "$new_conf" "$CONF" && [ -f "$DIR/slurmctld.pid" ] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null \
      && [ -f "$DIR/slurmd.pid" ] && kill -0 "$(cat "$DIR/slurmd.pid")" 2>/dev/null \
      && scontrol ping 2>/dev/null | grep -q "is UP"; then
    rm -f "$new_conf"
    echo "slurm: already running"
    return 0
  fi
  mv "$new_conf" "$CONF"
  chmod 644 "$CONF"
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  fi
  chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
  chmod 700 /etc/munge /var/lib/munge /var/log/munge
  chmod 400 /etc/munge/munge.key
  chmod 755 /run/munge
  if ! pgrep -x munged >/dev/null; then
    setpriv --reuid=munge --regid=munge --init-groups munged
  fi
  [ -f "$DIR/slurmctld.pid" ] && kill "$(cat "$DIR/slurmctld.pid")" 2>/dev/null || true
  [ -f "$DIR/slurmd.pid" ] && kill "$(cat "$DIR/slurmd.pid")" 2>/dev/null || true
  sleep 0.5
  slurmctld -c
  slurmd
  for _ in $(seq 1 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
      echo "slurm: node $host idle ($cpus CPUs)"
      return 0
    fi
    sleep 0.5
  done
  echo "slurm: the node did not become idle; see $DIR/log" >&2
  sinfo >&2 || true
  return 1
}

stop() {
  for p in slurmd slurmctld; do
    [ -f "$DIR/$p.pid" ] && kill "$(cat "$DIR/$p.pid")" 2>/dev/null || true
  done
}

"${1:-start}"
