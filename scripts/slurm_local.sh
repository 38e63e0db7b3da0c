#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, to try (and test) hydra/launcher=slurm:
#
#   scripts/slurm_local.sh start [DIR]    # install the packages if missing (root), start munged,
#                                         # MariaDB, slurmdbd, slurmctld, slurmd; wait until
#                                         # `srun hostname` works
#   scripts/slurm_local.sh status [DIR]   # daemons, sinfo, squeue
#   scripts/slurm_local.sh stop [DIR]     # stop slurmd, slurmctld, slurmdbd, its MariaDB and munged
#                                         # (running jobs are cancelled)
#
# DIR (default $TRANSFERBENCH_SLURM_DIR or /var/tmp/transferbench-slurm) holds slurm.conf,
# the controller's state, slurmd's spool, the pid files and the logs (DIR/log/slurmctld.log,
# slurmd.log, jobcomp.log: one line per finished job with its state). No systemd, no cgroups:
# the daemons are started directly. Accounting (slurmdbd over a MariaDB server of its own in
# DIR/db, on 127.0.0.1:$DB_PORT) makes sacct work, which submitit reads job states from. The node has the machine's cores and memory (`slurmd -C`);
# partition `main` (default) is preemptible (PreemptMode=REQUEUE), a job sent to `urgent`
# preempts it; jobs may be requeued (JobRequeue=1). Every command is idempotent.
# /etc/slurm/slurm.conf is linked to DIR/slurm.conf so that sbatch, srun, squeue ... find it.
set -euo pipefail

ACTION=${1:-}
DIR=${2:-${TRANSFERBENCH_SLURM_DIR:-/var/tmp/transferbench-slurm}}
CONF=$DIR/slurm.conf
SYSTEM_CONF=/etc/slurm/slurm.conf
MUNGE_SOCKET_DIR=/run/munge
DB_PORT=${TRANSFERBENCH_SLURM_DB_PORT:-3307}
DB_SOCKET=$DIR/db/mysqld.sock
PACKAGES="slurm-wlm slurmdbd munge mariadb-server"
export SLURM_CONF=$CONF

die() { echo "error: $*" >&2; exit 1; }
say() { echo "slurm_local: $*"; }

usage() {
  die "usage: scripts/slurm_local.sh start|stop|status [DIR]"
}

install_packages() {
  local program missing=""
  for program in slurmctld slurmd slurmdbd sbatch munged mariadbd mariadb-install-db; do
    command -v "$program" >/dev/null || missing="$missing $program"
  done
  [ -z "$missing" ] && return
  [ "$(id -u)" -eq 0 ] || die "missing:$missing; installing them needs root: run" \
    "'sudo apt-get install -y $PACKAGES' (Debian/Ubuntu), then this script as root"
  command -v apt-get >/dev/null || die "missing:$missing, and this is not a Debian-like system" \
    "(no apt-get): install $PACKAGES with the system's package manager"
  say "installing $PACKAGES (apt-get; missing:$missing)"
  apt-get update -q
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $PACKAGES
}

require_root() {
  [ "$(id -u)" -eq 0 ] || die "starting the local cluster needs root (munged, slurmd); run it with sudo"
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  if munge_works; then say "munged already running"; return; fi
  [ -s /etc/munge/munge.key ] || { say "creating /etc/munge/munge.key"; mungekey --create --force; }
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  mkdir -p "$MUNGE_SOCKET_DIR" /var/lib/munge /var/log/munge
  chown munge:munge "$MUNGE_SOCKET_DIR" /var/lib/munge /var/log/munge
  chmod 0755 "$MUNGE_SOCKET_DIR"
  runuser -u munge -- munged
  for _ in $(seq 50); do munge_works && { say "started munged"; return; }; sleep 0.2; done
  die "munged did not start; see /var/log/munge/munged.log"
}

db() { mariadb --socket="$DB_SOCKET" -u root "$@"; }

start_database() {
  if [ -S "$DB_SOCKET" ] && db -e 'select 1' >/dev/null 2>&1; then say "MariaDB already running"; return; fi
  if [ ! -d "$DIR/db/data/mysql" ]; then
    mkdir -p "$DIR/db"
    mariadb-install-db --user=root --datadir="$DIR/db/data" --auth-root-authentication-method=socket \
      --skip-test-db >"$DIR/log/mariadb-install.log" 2>&1 \
      || die "mariadb-install-db failed; see $DIR/log/mariadb-install.log"
  fi
  mariadbd --user=root --datadir="$DIR/db/data" --socket="$DB_SOCKET" --pid-file="$DIR/db/mysqld.pid" \
    --bind-address=127.0.0.1 --port="$DB_PORT" --log-error="$DIR/log/mariadb.log" \
    --innodb-buffer-pool-size=64M >/dev/null 2>&1 &
  for _ in $(seq 100); do db -e 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
  db -e 'select 1' >/dev/null 2>&1 || die "MariaDB did not start; see $DIR/log/mariadb.log"
  db -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'transferbench';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
  say "started MariaDB (127.0.0.1:$DB_PORT, data in $DIR/db)"
}

write_dbd_conf() {
  cat >"$DIR/slurmdbd.conf" <<EOF
# Written by scripts/slurm_local.sh: accounting for the local cluster (sacct).
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=transferbench
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$DIR/slurmdbd.conf"
}

dbd_ready() { sacctmgr -n list cluster >/dev/null 2>&1; }

start_dbd() {
  write_dbd_conf
  if alive "$DIR/slurmdbd.pid"; then say "slurmdbd already running (pid $(cat "$DIR/slurmdbd.pid"))"
  else
    /usr/sbin/slurmdbd  # reads slurmdbd.conf beside $SLURM_CONF
    for _ in $(seq 100); do dbd_ready && break; sleep 0.2; done
    dbd_ready || die "slurmdbd did not start; see $DIR/log/slurmdbd.log"
    say "started slurmdbd (pid $(cat "$DIR/slurmdbd.pid"))"
  fi
  sacctmgr -n -P list cluster format=cluster | grep -qx transferbench \
    || sacctmgr -i add cluster transferbench >/dev/null
}

node_line() {
  # NodeName=<host> CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=..
  slurmd -C | head -n 1
}

write_conf() {
  local node cpus memory host
  host=$(hostname -s)
  node=$(node_line)
  cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node")
  memory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  cat >"$CONF.new" <<EOF
# Written by scripts/slurm_local.sh: a single-node cluster for transferbench (no cgroups).
ClusterName=transferbench
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# a requeued job may start again cred_expire seconds after it ended (default 120)
AuthInfo=cred_expire=10
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
JobRequeue=1
ReturnToService=2
KillWait=5
MinJobAge=600
SlurmdTimeout=30
MessageTimeout=10
$node State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE
PartitionName=urgent Nodes=$host MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
EOF
  mv "$CONF.new" "$CONF"
  say "wrote $CONF ($host: $cpus CPUs, $memory MB)"
}

link_system_conf() {
  if [ -L "$SYSTEM_CONF" ] && [ "$(readlink "$SYSTEM_CONF")" = "$CONF" ]; then return; fi
  [ -e "$SYSTEM_CONF" ] && die "$SYSTEM_CONF exists and is not this script's; move it away or" \
    "set SLURM_CONF=$CONF yourself"
  mkdir -p "$(dirname "$SYSTEM_CONF")"
  ln -s "$CONF" "$SYSTEM_CONF"
  say "linked $SYSTEM_CONF -> $CONF"
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_daemon() {  # NAME PIDFILE
  if alive "$2"; then say "$1 already running (pid $(cat "$2"))"; return; fi
  "/usr/sbin/$1"
  for _ in $(seq 50); do alive "$2" && { say "started $1 (pid $(cat "$2"))"; return; }; sleep 0.2; done
  die "$1 did not start; see $DIR/log/$1.log"
}

wait_ready() {
  local state=""
  for _ in $(seq 120); do
    state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n 1 || true)
    case $state in
      idle|mix|alloc) break ;;
      down*|drain*) scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  case $state in idle|mix|alloc) ;; *) die "the node is '$state', not idle; see $DIR/log/" ;; esac
  timeout 60 srun -N1 -n1 -t 1 hostname >/dev/null || die "'srun hostname' failed; see $DIR/log/"
  say "cluster ready: node $(hostname -s) is $state and 'srun hostname' works"
  sinfo
}

start() {
  install_packages
  require_root
  start_munge
  write_conf
  link_system_conf
  start_database
  start_dbd
  start_daemon slurmctld "$DIR/slurmctld.pid"
  start_daemon slurmd "$DIR/slurmd.pid"
  wait_ready
}

stop_daemon() {  # NAME PIDFILE
  if ! alive "$2"; then say "$1 not running"; return; fi
  local pid
  pid=$(cat "$2")
  kill "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || { say "stopped $1"; return; }; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
  say "killed $1"
}

stop() {
  if [ -f "$CONF" ]; then
    scancel --full --quiet --partition=main,urgent 2>/dev/null || true
    stop_daemon slurmd "$DIR/slurmd.pid"
    stop_daemon slurmctld "$DIR/slurmctld.pid"
    stop_daemon slurmdbd "$DIR/slurmdbd.pid"
    stop_daemon MariaDB "$DIR/db/mysqld.pid"
  fi
  if [ -s "$MUNGE_SOCKET_DIR/munged.pid" ] && munge_works; then
    munged --stop >/dev/null 2>&1 || kill "$(cat "$MUNGE_SOCKET_DIR/munged.pid")"
    say "stopped munged"
  fi
  if [ -L "$SYSTEM_CONF" ] && [ "$(readlink "$SYSTEM_CONF")" = "$CONF" ]; then rm "$SYSTEM_CONF"; fi
}

status() {
  [ -f "$CONF" ] || { say "no cluster in $DIR (run: scripts/slurm_local.sh start)"; return 1; }
  local code=0
  munge_works && say "munged: running" || { say "munged: not running"; code=1; }
  for daemon in slurmdbd slurmctld slurmd; do
    alive "$DIR/$daemon.pid" && say "$daemon: running (pid $(cat "$DIR/$daemon.pid"))" \
      || { say "$daemon: not running"; code=1; }
  done
  if [ "$code" -eq 0 ]; then sinfo && squeue; fi
  return "$code"
}

case $ACTION in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
