#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for trying and testing `ablation --launcher slurm`.
#
#   tools/slurm-local.sh up       install if missing (Debian/Ubuntu, root), configure, start,
#                                 wait until the node is idle; prints the SLURM_CONF to export
#   tools/slurm-local.sh down     stop every daemon this script started (by PID)
#   tools/slurm-local.sh status   the daemons and the node
#   tools/slurm-local.sh env      the `export SLURM_CONF=...` line
#
# Runs as root without systemd: munged (as the munge user, its own socket and key),
# MariaDB (its own data folder, TCP port E2NET_SLURM_DB_PORT) for slurmdbd, so `sacct` works,
# slurmctld and slurmd. Everything lives in E2NET_SLURM_DIR (default /tmp/e2net-slurm):
# etc/ (slurm.conf, slurmdbd.conf, gres.conf), log/, run/ (PID files), state/, spool/, db/.
# `AuthInfo=cred_expire=10` lets a requeued job start again after ~18 s (default ~160 s).
# E2NET_SLURM_GPUS (default 2) fake GPUs (GRES on character devices like /dev/null), so that
# `--slurm-gpus-per-job 1` is accepted; 0 for a cluster without GPUs.
# Idempotent: `up` on a running cluster does nothing; the script never overwrites a
# slurm.conf it did not write (its files carry the MARK line) and never stops a daemon it
# did not start.
set -euo pipefail

DIR="${E2NET_SLURM_DIR:-/tmp/e2net-slurm}"
GPUS="${E2NET_SLURM_GPUS:-2}"
CPUS="${E2NET_SLURM_CPUS:-8}"
PORT="${E2NET_SLURM_PORT:-6817}" # slurmctld; slurmd +1, slurmdbd +2
DB_PORT="${E2NET_SLURM_DB_PORT:-3307}"
MARK="# written by e2net-eval tools/slurm-local.sh"
CONF="$DIR/etc/slurm.conf"
SOCKET="$DIR/munge/munge.socket.2"
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
export SLURM_CONF="$CONF"

say() { echo "slurm-local: $*" >&2; }
die() {
	say "error: $*"
	exit 1
}

pid_of() { # the recorded PID of a daemon this script started, if it still runs
	local file="$DIR/run/$1.pid"
	[[ -f "$DIR/run/$1.started" && -s "$file" ]] || return 1
	local pid
	pid="$(tr -dc 0-9 <"$file")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install_packages() {
	local missing=()
	for cmd in slurmctld slurmd sbatch munged slurmdbd mariadbd; do
		command -v "$cmd" >/dev/null || missing+=("$cmd")
	done
	[[ ${#missing[@]} -eq 0 ]] && return
	[[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}; run as root to install ${PACKAGES[*]}"
	say "installing ${PACKAGES[*]} (missing: ${missing[*]})"
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
		--no-install-recommends "${PACKAGES[@]}" >&2
}

write_conf() { # write_conf FILE: stdin into FILE unless FILE exists without MARK
	if [[ -e "$1" ]] && ! grep -qF "$MARK" "$1"; then
		die "$1 exists and was not written by this script; not overwriting it"
	fi
	{
		echo "$MARK"
		cat
	} >"$1.tmp"
	mv "$1.tmp" "$1"
}

configure() {
	mkdir -p "$DIR"/{etc,log,run,state,spool,munge,dev}
	local host mem gres=""
	host="$(hostname -s)"
	mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048))
	[[ "$GPUS" -gt 0 ]] && gres="Gres=gpu:$GPUS"
	write_conf "$CONF" <<EOF
ClusterName=e2net
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCKET,cred_expire=10
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$((PORT + 2))
AccountingStoragePass=$SOCKET
DefMemPerCPU=4096
JobRequeue=1
KillWait=30
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerParameters=sched_interval=2
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem $gres State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
	local files=()
	for ((i = 0; i < GPUS; i++)); do
		[[ -e "$DIR/dev/gpu$i" ]] || mknod "$DIR/dev/gpu$i" c 1 3 # like /dev/null
		files+=("$DIR/dev/gpu$i")
	done
	{ [[ "$GPUS" -gt 0 ]] && echo "NodeName=localhost Name=gpu File=$(
		IFS=,
		echo "${files[*]}"
	)"; } | write_conf "$DIR/etc/gres.conf" || true
	write_conf "$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$SOCKET
DbdHost=localhost
DbdPort=$((PORT + 2))
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=e2net
StorageLoc=e2net_slurm_acct_db
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
EOF
	chmod 600 "$DIR/etc/slurmdbd.conf"
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
	local until=$((SECONDS + $1)) what="$2"
	shift 2
	until "$@" >/dev/null 2>&1; do
		[[ $SECONDS -lt $until ]] || die "timed out waiting for $what (logs in $DIR/log)"
		sleep 0.5
	done
}

start_munge() {
	pid_of munged >/dev/null && return
	local key="$DIR/munge/munge.key"
	[[ -s "$key" ]] || dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
	chown -R munge: "$DIR/munge"
	chmod 700 "$DIR/munge"
	chmod 400 "$key"
	runuser -u munge -- munged --force --socket="$SOCKET" --key-file="$key" \
		--pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
		--seed-file="$DIR/munge/munged.seed"
	wait_for 20 munged test -s "$DIR/munge/munged.pid"
	cp "$DIR/munge/munged.pid" "$DIR/run/munged.pid"
	touch "$DIR/run/munged.started"
}

db() { mariadb --no-defaults -S "$DIR/db/db.sock" -u root "$@"; }

start_db() {
	pid_of mariadbd >/dev/null && return
	if [[ ! -d "$DIR/db/mysql" ]]; then
		mkdir -p "$DIR/db" && chown mysql: "$DIR/db"
		mariadb-install-db --no-defaults --user=mysql --datadir="$DIR/db" \
			--auth-root-authentication-method=socket --skip-test-db >"$DIR/log/db-install.log" 2>&1
	fi
	setsid mariadbd --no-defaults --user=mysql --datadir="$DIR/db" --socket="$DIR/db/db.sock" \
		--port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$DIR/db/mariadbd.pid" \
		--log-error="$DIR/db/mariadb.log" </dev/null >/dev/null 2>&1 &
	echo $! >"$DIR/run/mariadbd.pid"
	touch "$DIR/run/mariadbd.started"
	wait_for 60 mariadb db -e "SELECT 1"
	db -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'e2net';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'e2net';
GRANT ALL ON e2net_slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON e2net_slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurm() { # start_slurm NAME ARGS...: a slurm daemon in the foreground, its PID recorded
	local name="$1"
	shift
	pid_of "$name" >/dev/null && return
	setsid "$name" -D "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
	echo $! >"$DIR/run/$name.pid"
	touch "$DIR/run/$name.started"
}

node_ready() { sinfo -h -N -o %t | grep -qE '^(idle|mix|alloc)'; }

up() {
	if [[ -e "$CONF" ]] && ! grep -qF "$MARK" "$CONF"; then
		die "$CONF exists and was not written by this script; not touching it"
	fi
	local running=0
	for d in "${DAEMONS[@]}"; do pid_of "$d" >/dev/null && running=$((running + 1)); done
	if [[ $running -eq ${#DAEMONS[@]} ]] && node_ready; then
		say "already up ($CONF)"
		echo "export SLURM_CONF=$CONF"
		return
	fi
	install_packages
	configure
	start_munge
	start_db
	start_slurm slurmdbd
	wait_for 60 "slurmdbd" sacctmgr -n list cluster
	sacctmgr -i -n list cluster format=cluster | grep -qw e2net || sacctmgr -i add cluster e2net >&2
	start_slurm slurmctld
	wait_for 60 "slurmctld" scontrol ping
	start_slurm slurmd -N localhost
	wait_for 60 "an idle node" node_ready
	say "up: $(sinfo -h -o '%P %D %t %G') ($CONF)"
	echo "export SLURM_CONF=$CONF"
}

down() {
	local pids=() names=()
	for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do # slurmd first, munged last
		local name="${DAEMONS[$i]}" pid
		if pid="$(pid_of "$name")"; then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
			names+=("$name")
			# slurmdbd and the database: after the slurm daemons are gone
			for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		fi
		rm -f "$DIR/run/$name.started"
	done
	for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true; done
	say "down (stopped: ${names[*]:-nothing})"
}

status() {
	local up=0
	for d in "${DAEMONS[@]}"; do
		if pid="$(pid_of "$d")"; then
			echo "$d: running (pid $pid)"
			up=$((up + 1))
		else
			echo "$d: not running"
		fi
	done
	[[ $up -gt 0 ]] && sinfo -N -o '%N %t %c %m %G' 2>/dev/null || true
	[[ $up -eq ${#DAEMONS[@]} ]]
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
env) echo "export SLURM_CONF=$CONF" ;;
*)
	echo "usage: $0 up|down|status|env" >&2
	exit 2
	;;
esac
