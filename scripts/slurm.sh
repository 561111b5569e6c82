#!/usr/bin/env bash
# Starts a single-node Slurm cluster for the tests and benchmarks, and prints
# the path of its slurm.conf (point SLURM_CONF at it).
# Usage: scripts/slurm.sh start DIR [NODE] | stop DIR | status DIR
#
# The cluster is Debian's slurm-wlm: munged (one per host, with a generated
# key when none exists), then slurmctld and slurmd, both as root, with their
# state, spool, logs and pid files under DIR and ports of their own (so
# several clusters can run side by side, and none clashes with a host's own
# Slurm). proctrack/linuxproc and task/none work on hosts without cgroup
# delegation; the node offers two GPUs as a GRES without devices, so jobs
# can ask for `--gres=gpu:N`.
set -euo pipefail
cmd=${1:?start|stop|status}; dir=${2:?cluster directory}
node=${3:-insitu-node}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_munge() {
  if [ -S /run/munge/munge.socket.2 ] && munge -n </dev/null >/dev/null 2>&1; then return; fi
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && return; sleep 0.1; done
  echo "munged did not start" >&2; exit 1
}

case "$cmd" in
start)
  dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
  conf=$dir/slurm.conf
  if [ -f "$conf" ] && SLURM_CONF=$conf scontrol ping 2>/dev/null | grep -q UP \
     && SLURM_CONF=$conf sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "$conf"; exit 0
  fi
  "$0" stop "$dir" >/dev/null 2>&1 || true
  start_munge
  mkdir -p "$dir/state" "$dir/spool/$node" "$dir/log"
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {print int($2/1024*0.9)}' /proc/meminfo)
  ctld_port=$(free_port); slurmd_port=$(free_port)
  cat >"$conf" <<EOF
ClusterName=insitu-test
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$node NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  # Two GPUs without hardware: Slurm wants character devices for a GPU's
  # files, so each is a node of the null device; jobs get them counted and
  # named (CUDA_VISIBLE_DEVICES), nothing more.
  for i in 0 1; do
    [ -c "$dir/gpu$i" ] || { rm -f "$dir/gpu$i"; mknod "$dir/gpu$i" c 1 3; }
  done
  printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/gpu[0-1]\n' "$node" "$dir" >"$dir/gres.conf"
  export SLURM_CONF=$conf
  /usr/sbin/slurmctld -i
  /usr/sbin/slurmd -N "$node"
  for _ in $(seq 150); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then echo "$conf"; exit 0; fi
    sleep 0.2
  done
  echo "the cluster in $dir did not come up; its logs:" >&2
  tail -n 20 "$dir"/log/* >&2 || true
  exit 1
  ;;
stop)
  for pidfile in "$dir"/slurmd-*.pid "$dir/slurmctld.pid"; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  ;;
status)
  SLURM_CONF=$dir/slurm.conf sinfo
  ;;
*) echo "usage: $0 start DIR [NODE] | stop DIR | status DIR" >&2; exit 2 ;;
esac
