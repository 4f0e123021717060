#!/usr/bin/env bash
# A single-node Slurm cluster for tests/it/slurm.rs, as root, without cgroups (Debian's
# slurm-wlm and munge, which .ci/run installs): its munged, slurmctld and slurmd, their
# sockets, state, spool and logs under $SLURM_TEST_DIR, from a slurm.conf written there.
#   SLURM_TEST_DIR=/tmp/x scripts/slurm-test-cluster.sh start   # then SLURM_CONF=/tmp/x/slurm.conf sbatch ...
#   SLURM_TEST_DIR=/tmp/x scripts/slurm-test-cluster.sh stop
set -euo pipefail
D=${SLURM_TEST_DIR:?}
case "$1" in
start)
    mkdir -p "$D/state" "$D/spool" "$D/log" "$D/munge"
    host=$(hostname -s)
    cpus=$(nproc)
    cat > "$D/slurm.conf" <<CONF
ClusterName=retorttest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket.2
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    munged --force --socket="$D/munge/munge.socket.2" --pid-file="$D/munge/munged.pid" --log-file="$D/log/munged.log" --seed-file="$D/munge/seed"
    SLURM_CONF="$D/slurm.conf" slurmctld
    SLURM_CONF="$D/slurm.conf" slurmd
    ;;
stop)
    SLURM_CONF="$D/slurm.conf" scontrol shutdown 2>/dev/null || true
    for pid in "$D/slurmd.pid" "$D/slurmctld.pid" "$D/munge/munged.pid"; do
        [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
    done
    ;;
*)
    echo "usage: SLURM_TEST_DIR=DIR $0 start|stop" >&2
    exit 2
    ;;
esac
