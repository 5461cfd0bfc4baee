#!/usr/bin/env bash
# A real Slurm test of the workflow (issue 6): install Slurm + munge from Debian's packages if missing, start a
# single-node cluster on this host, run a tiny PTB experiment through `snakemake --profile
# profiles/slurm-localhost` (every job goes through sbatch), check that train/evaluate jobs got Slurm job ids
# and that the results exist, then stop the daemons this script started.
#
#   sudo tests/slurm/run_local_slurm.sh            (as root; PYTHON=... to pick the interpreter, default .venv)
#
# Needs root (munge, slurmd) and Debian's package registry when Slurm is not installed yet. Writes
# /etc/slurm/slurm.conf (job steps started with srun inside a job read the default path), saving any existing
# one and putting it back on exit. Exit status 0 = passed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
WORK="$(mktemp -d /tmp/textvae-slurm.XXXXXX)"
LOG="$WORK/snakemake.log"
STARTED_MUNGE=0

say() { echo "[slurm-test] $*"; }

cleanup() {
  set +e
  for pidfile in "$WORK/slurmd.pid" "$WORK/slurmctld.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
  if [ "$STARTED_MUNGE" = 1 ] && [ -f /run/munge/munged.pid ]; then kill "$(cat /run/munge/munged.pid)" 2>/dev/null; fi
  sleep 1
  if [ -f "$WORK/slurm.conf.saved" ]; then cp "$WORK/slurm.conf.saved" /etc/slurm/slurm.conf; else rm -f /etc/slurm/slurm.conf; fi
  say "daemons stopped; logs kept in $WORK"
}
trap cleanup EXIT

if [ "$(id -u)" != 0 ]; then echo "run as root (munge and slurmd need it)" >&2; exit 2; fi

# ---- 1. install
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
if ! "$PYTHON" -c "import snakemake_executor_plugin_slurm" 2>/dev/null; then
  say "installing snakemake-executor-plugin-slurm"
  "$PYTHON" -m pip install -q snakemake-executor-plugin-slurm
fi
say "$(slurmctld -V), $("$PYTHON" -m snakemake --version | head -1) (snakemake)"

# ---- 2. a single-node cluster on this host (slurm.conf as ../shared/notes/slurm-local.md)
HOST="$(hostname)"
CPUS="$(nproc)"
MEM_MB="$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))"
mkdir -p "$WORK/state" "$WORK/spool" "$WORK/log"
cat > "$WORK/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
mkdir -p /etc/slurm
[ -f /etc/slurm/slurm.conf ] && cp /etc/slurm/slurm.conf "$WORK/slurm.conf.saved"
cp "$WORK/slurm.conf" /etc/slurm/slurm.conf
export SLURM_CONF=/etc/slurm/slurm.conf

if ! pgrep -x munged >/dev/null; then
  mkdir -p /run/munge && chown munge:munge /run/munge
  [ -f /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || /usr/sbin/create-munge-key -f; }
  runuser -u munge -- /usr/sbin/munged
  STARTED_MUNGE=1
fi
/usr/sbin/slurmctld
/usr/sbin/slurmd
for _ in $(seq 1 30); do
  if sinfo -h -o "%T" 2>/dev/null | grep -q idle; then break; fi
  sleep 1
done
sinfo
sinfo -h -o "%T" | grep -q idle || { echo "the test cluster did not come up; see $WORK/log" >&2; exit 1; }

# ---- 3a. the user's own command, as typed at the repository root, planned against this real cluster: the paper's
#          experiment (config/paper.yaml) through the `slurm` profile found by name, one GPU per train/evaluate job:
#          every run of config/paper.yaml (each Table 2/3/5 row, and the baselines' own recipes, x 3 seeds) trained
#          and evaluated
say "dry run of 'snakemake --cores 8 --profile slurm' at the repository root"
PLAN="$WORK/paper-plan.log"
(cd "$REPO" && PATH="$(dirname "$PYTHON"):$PATH" "$PYTHON" -m snakemake -n --cores 8 --profile slurm > "$PLAN" 2>&1) || { tail -40 "$PLAN" >&2; echo "the paper's dry run failed" >&2; exit 1; }
planned="$(grep -cE "^rule (train|evaluate):" "$PLAN" || true)"
with_gpu="$(grep -cE "resources: .*gpu=1" "$PLAN" || true)"
say "paper plan: $planned train/evaluate jobs, $with_gpu jobs asking for gpu=1"
expected="$(cd "$REPO" && "$PYTHON" -c 'from harness.core.config import ExperimentConfig as E; print(2 * len(E.from_file("config/paper.yaml").runs()))')"
say "expected $expected train/evaluate jobs"
[ "$planned" -eq "$expected" ] && [ "$with_gpu" -ge "$planned" ] || { echo "the paper plan lacks train/evaluate jobs with gpu=1" >&2; exit 1; }

# ---- 3b. the smoke workflow through the Slurm profile (tiny budget)
MIRROR="$REPO/../shared/data"
mkdir -p "$WORK/run"
cat > "$WORK/run/slurm-test.yaml" <<EOF
experiment: slurm-test
data_mirror: $( [ -d "$MIRROR" ] && echo "$MIRROR" || echo null )
paper_values: $REPO/../shared/paper/tables.csv
device: cpu
datasets: [ptb]
models: [twr-vae, vae-lstm-noanneal]
seeds: [1]
data_options:
  ptb: {max_train_sentences: 200, max_valid_sentences: 40, max_test_sentences: 40}
architecture: {emb_dim: 16, hidden_dim: 16, z_dim: 4}
train: {epochs: 1, batch_size: 20, lr: 0.001}
evaluate: {iw_samples: 5, iw_chunk: 5, batch_size: 20}
model_defs:
  twr-vae: {method: twr-vae, paper_name: TWR-VAE}
  vae-lstm-noanneal: {method: vae-rnn, paper_name: null, options: {rnn_type: lstm}}
EOF
say "running the workflow through sbatch (log: $LOG)"
cd "$WORK/run"
PATH="$(dirname "$PYTHON"):$PATH" "$PYTHON" -m snakemake --snakefile "$REPO/workflow/Snakefile" \
  --directory "$WORK/run" --profile "$REPO/profiles/slurm-localhost" --configfile "$WORK/run/slurm-test.yaml" \
  2>&1 | tee "$LOG"

# ---- 4. checks: real Slurm job ids for train and evaluate jobs, and the results
status=0
grep -E "SLURM jobid" "$LOG" | sed 's/^/[slurm-test] /'
for rule in fetch_dataset preprocess train evaluate interpolate table; do
  count="$(grep -cE "submitted with SLURM jobid [0-9]+ \(log: .*/rule_${rule}/" "$LOG" || true)"
  say "rule $rule: $count job(s) submitted with a Slurm job id"
  [ "$count" -gt 0 ] || { echo "no Slurm job id for rule $rule in the log" >&2; status=1; }
done
submitted="$(grep -c "submitted with SLURM jobid" "$LOG" || true)"
finished="$(grep -c "^Finished jobid" "$LOG" || true)"
say "$submitted jobs submitted through sbatch, $finished finished"
for model in twr-vae vae-lstm-noanneal; do
  [ -s "$WORK/run/results/slurm-test/ptb/$model/seed1/metrics.json" ] || { echo "missing metrics.json of $model" >&2; status=1; }
done
[ -s "$WORK/run/results/slurm-test/tables/table2.tex" ] || { echo "missing table2.tex" >&2; status=1; }
if [ "$status" = 0 ]; then say "PASSED: every job went through sbatch; results written"; else say "FAILED"; fi
exit "$status"
