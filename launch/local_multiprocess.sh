#!/usr/bin/env bash
# Run jaxrestore.main as NPROC cooperating processes on this machine, the way a
# multi-host pod runs it: each process has its own CPU device(s) and joins the
# others through jax.distributed with a coordinator on localhost.
#
#   launch/local_multiprocess.sh NPROC --config configs/gan.py:tiny --workdir DIR
#
# Environment: DEVICES_PER_PROCESS (CPU devices of each process, default 1),
# COORDINATOR_PORT (default: a free port), PYTHON (default: python).
# Process 0 prints progress; the others print only warnings and errors. If one
# process fails, the others are stopped and its exit status is returned.
# SIGTERM or SIGINT to this script is passed on to every process: they agree on a
# step, save its checkpoint and exit with status 75, which this script returns;
# rerunning the same command resumes.
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 NPROC [jaxrestore.main arguments...]" >&2
  exit 2
fi
nproc=$1
shift
python=${PYTHON:-python}
devices=${DEVICES_PER_PROCESS:-1}
port=${COORDINATOR_PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

pids=()
stop_all() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
}
stopping=0
trap 'stopping=1; stop_all' INT TERM

for ((i = 0; i < nproc; i++)); do
  JAX_PLATFORMS=cpu \
    JAX_NUM_CPU_DEVICES=$devices \
    JAXRESTORE_DISTRIBUTED=1 \
    JAX_COORDINATOR_ADDRESS=127.0.0.1:$port \
    JAX_NUM_PROCESSES=$nproc \
    JAX_PROCESS_ID=$i \
    "$python" -m jaxrestore.main "$@" &
  pids+=("$!")
done

running() {
  local pid count=0
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then count=$((count + 1)); fi
  done
  echo "$count"
}

# Wait for every process; a trapped signal interrupts `wait`, so loop until none runs.
while (($(running) > 0)); do
  code=0
  wait -n || code=$?
  # 75: stopped after a checkpoint (preempted); the others stop at the same step.
  if ((code != 0 && code != 75 && code != 127 && !stopping)); then
    echo "$0: a process exited with status $code; stopping the others" >&2
    stopping=1
    stop_all
  fi
done
status=0
for pid in "${pids[@]}"; do
  code=0
  wait "$pid" || code=$?
  if ((code != 0 && (status == 0 || status == 75))); then status=$code; fi
done
exit "$status"
