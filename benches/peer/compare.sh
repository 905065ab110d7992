#!/usr/bin/env bash
# Peer comparison (issue "Speed"): one chain of 100 plain .cypher migrations (STEPS), each
# creating an index and ingesting 1,000 nodes (NODES), applied side by side by
#   - graphmig (`graphmig run`, timed as a whole process),
#   - neo4j-python-migrations 0.1.5 from PyPI (`python -m neo4j_python_migrations
#     migrate`, timed as a whole process), and
#   - the floor, benches/peer/floor.rs: the same statements straight through neo4rs,
#     one transaction each, no bookkeeping,
# each against a fresh ArcadeDB database, ROUNDS times in rotating order after WARMUP
# runs of each (ArcadeDB's JIT needs them: the first runs on a new server are 2 to 6
# times slower). Prints median seconds, the ratios to the floor, and the verdict against
# the targets (graphmig at most 1.2x the floor, and faster than the Python peer) on the
# median of each round's own ratio: the server drifts over a session, a round does not.
#
#   benches/peer/compare.sh
#
# Environment: ROUNDS (7), WARMUP (3 runs of each tool), STEPS (100), NODES (1000);
# PEER_BOLT_PORT and PEER_HTTP_PORT (both) to use an ArcadeDB already running there
# instead of starting instance `bench` on 7697/2490 and stopping it at exit; KEEP=1
# keeps the work folder (chain, logs, graphmig projects and ledgers).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
ARCADEDB="$ROOT/scripts/arcadedb.sh"
VENV="$ROOT/.dev/peer-venv"
# The peer and its driver, pinned (with the libraries its CLI imports).
PEER_PACKAGES=(neo4j-python-migrations==0.1.5 neo4j==5.28.8 typer==0.29.2 yarl==1.25.1
  packaging==26.3)
ROUNDS="${ROUNDS:-7}"
WARMUP="${WARMUP:-3}"
STEPS="${STEPS:-100}"
NODES="${NODES:-1000}"
if [[ -n "${PEER_BOLT_PORT:-}" && -z "${PEER_HTTP_PORT:-}" ]]; then
  echo "compare: PEER_BOLT_PORT needs PEER_HTTP_PORT too" >&2
  exit 2
fi
BOLT="${PEER_BOLT_PORT:-7697}"
HTTP="${PEER_HTTP_PORT:-2490}"

log() { echo "compare: $*" >&2; }

WORK="$(mktemp -d /tmp/graphmig-peer.XXXXXX)"
STARTED=""
cleanup() {
  if [[ -n "$STARTED" ]]; then "$ARCADEDB" stop bench || true; fi
  if [[ "${KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# --- prerequisites --------------------------------------------------------------
"$ARCADEDB" install
peer_installed() { # whether the venv holds every pinned package
  local have
  have="$("$VENV/bin/pip" freeze 2>/dev/null)" || return 1
  for package in "${PEER_PACKAGES[@]}"; do grep -qixF "$package" <<<"$have" || return 1; done
}
if ! peer_installed; then
  log "installing ${PEER_PACKAGES[*]} into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PEER_PACKAGES[@]}"
fi

log "building graphmig (release) and the floor"
(cd "$ROOT" && cargo build --release -p graphmig --quiet)
GRAPHMIG="$ROOT/target/release/graphmig"
FLOOR="$(cd "$ROOT" && cargo bench -p graphmig --bench floor --no-run --quiet --message-format=json \
  | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "floor" and m.get("executable"):
        print(m["executable"])')"
[[ -x "$FLOOR" ]] || { log "could not find the floor executable"; exit 1; }

# --- the chain --------------------------------------------------------------------
# neo4j-python-migrations runs a file's statements in one transaction; on ArcadeDB
# schema and data may share one (notes/arcadedb.md), so one file per step serves all
# three tools. graphmig still runs the CREATE INDEX as a schema step of its own.
CHAIN="$WORK/chain"
mkdir -p "$CHAIN"
for i in $(seq 1 "$STEPS"); do
  n="$(printf '%03d' "$i")"
  cat >"$CHAIN/V${n}__Chain_step_${n}.cypher" <<EOF
CREATE INDEX chain_$i IF NOT EXISTS FOR (n:Chain$i) ON (n.k);
UNWIND range(1, $NODES) AS k CREATE (:Chain$i {k: k, name: 'node ' + toString(k)});
EOF
done

# --- the database -----------------------------------------------------------------
PASSWORD="$("$ARCADEDB" password)"
if [[ -z "${PEER_BOLT_PORT:-}" ]]; then
  "$ARCADEDB" start bench "$BOLT" "$HTTP"
  STARTED=1
fi

cypher() { # DB QUERY -> JSON
  curl -sS --max-time 120 -u "root:$PASSWORD" -H 'Content-Type: application/json' \
    -X POST "http://127.0.0.1:$HTTP/api/v1/command/$1" \
    -d "{\"language\":\"cypher\",\"command\":\"$2\"}"
}

# Whether DB holds the whole chain: STEPS chain indexes and STEPS*NODES nodes.
check() { # DB
  local nodes indexes
  nodes="$(cypher "$1" "MATCH (n) WHERE n.k IS NOT NULL AND n.name STARTS WITH 'node ' RETURN count(n) AS c" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["result"][0]["c"])')"
  indexes="$(cypher "$1" "SHOW INDEXES" \
    | python3 -c 'import json, sys; print(sum(r["name"].startswith("chain_") for r in json.load(sys.stdin)["result"]))')"
  if [[ "$nodes" != $((STEPS * NODES)) || "$indexes" != "$STEPS" ]]; then
    log "$1: $nodes nodes and $indexes chain indexes, expected $((STEPS * NODES)) and $STEPS"
    return 1
  fi
}

# --- the three tools ----------------------------------------------------------------
# Each: DB LOG; runs the whole chain against the fresh database DB.
run_floor() {
  env GRAPHMIG_URI="bolt://127.0.0.1:$BOLT" GRAPHMIG_USER=root GRAPHMIG_PASSWORD="$PASSWORD" \
    GRAPHMIG_DATABASE="$1" "$FLOOR" "$CHAIN" >"$2" 2>&1
}
run_graphmig() {
  local project="$WORK/projects/$1"
  mkdir -p "$project"
  cat >"$project/graphmig.toml" <<EOF
[database]
uri = "bolt://127.0.0.1:$BOLT"
user = "root"
name = "$1"

[migrations]
dir = "$CHAIN"
EOF
  (cd "$project" && env GRAPHMIG_URI="bolt://127.0.0.1:$BOLT" GRAPHMIG_USER=root \
    GRAPHMIG_PASSWORD="$PASSWORD" GRAPHMIG_DATABASE="$1" "$GRAPHMIG" run >"$2" 2>&1)
}
run_python() {
  # --scheme bolt: ArcadeDB does not route; the password through the environment.
  env NEO4J_MIGRATIONS_PASS="$PASSWORD" "$VENV/bin/python" -m neo4j_python_migrations \
    --username root --host 127.0.0.1 --port "$BOLT" --scheme bolt --database "$1" \
    --path "$CHAIN" migrate >"$2" 2>&1
}

TOOLS=(floor graphmig python)
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
SEQ=0

# Runs TOOL on a fresh database, checks the result, drops the database and leaves the
# wall-clock seconds of the whole process in $TOOK. (Not run in a subshell, so that
# SEQ counts and a failure stops the script.)
TOOK=""
measure() { # TOOL LABEL
  SEQ=$((SEQ + 1))
  local db="peer_${1}_${SEQ}" logfile="$WORK/$1-$2.log" t0 t1
  "$ARCADEDB" create-db "$HTTP" "$db"
  t0="$EPOCHREALTIME"
  if ! "run_$1" "$db" "$logfile"; then
    log "$1 failed; last lines of $logfile:"
    tail -20 "$logfile" >&2
    exit 1
  fi
  t1="$EPOCHREALTIME"
  check "$db"
  "$ARCADEDB" drop-db "$HTTP" "$db"
  TOOK="$(python3 -c "print(f'{$t1 - $t0:.3f}')")"
}

# Other work on the machine (2 cores) skews every figure: show how busy it was.
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
log "chain: $STEPS files, each: CREATE INDEX + UNWIND range(1, $NODES) CREATE (one file per step for all three tools)"
log "warm-up: each tool $WARMUP time(s), on throwaway databases"
for w in $(seq 1 "$WARMUP"); do
  for tool in "${TOOLS[@]}"; do
    measure "$tool" "warmup$w"
    log "  warm-up $w $tool: $TOOK s"
  done
done
for round in $(seq 1 "$ROUNDS"); do
  # Rotate the order so that no tool always runs first or last.
  for k in 0 1 2; do
    tool="${TOOLS[$(((round - 1 + k) % 3))]}"
    measure "$tool" "round$round"
    log "  round $round $tool: $TOOK s"
    printf '%s\t%s\t%s\n' "$tool" "$TOOK" "$round" >>"$RESULTS"
  done
done

LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- the table ---------------------------------------------------------------------
python3 - "$RESULTS" "$STEPS" "$NODES" "$ROUNDS" "$LOAD_BEFORE" "$LOAD_AFTER" <<'PY'
import statistics, sys
path, steps, nodes, rounds = sys.argv[1], *map(int, sys.argv[2:5])
load_before, load_after = sys.argv[5:7]
runs, by_round = {}, {}
for line in open(path):
    tool, s, rnd = line.split()
    runs.setdefault(tool, []).append(float(s))
    by_round.setdefault(rnd, {})[tool] = float(s)
med = {t: statistics.median(v) for t, v in runs.items()}
floor = med["floor"]
names = {"floor": "floor (neo4rs, no bookkeeping)", "graphmig": "graphmig run",
         "python": "neo4j-python-migrations 0.1.5"}
print(f"\n{steps} migrations x (CREATE INDEX + {nodes} nodes), fresh ArcadeDB database each, "
      f"median of {rounds} round(s), whole process wall clock")
print(f"{'tool':<34} {'median s':>9} {'vs floor':>9}   runs")
for t in ("floor", "graphmig", "python"):
    runs_s = " ".join(f"{x:.2f}" for x in runs[t])
    print(f"{names[t]:<34} {med[t]:>9.2f} {med[t] / floor:>8.2f}x   {runs_s}")
g, p = med["graphmig"], med["python"]
# The three tools of a round run back to back, so a round's ratio sees one state
# of the server; ArcadeDB drifts over a session (slower as databases come and go),
# which the ratio of the medians mixes in. The verdict uses the paired ratios.
def paired(tool):
    return sorted(r[tool] / r["floor"] for r in by_round.values())
pg, pp = paired("graphmig"), [r["graphmig"] / r["python"] for r in by_round.values()]
mg, mp = statistics.median(pg), statistics.median(pp)
ok1, ok2 = mg <= 1.2, mp < 1.0
print(f"\ngraphmig / floor  = {mg:.2f}x, median of the {len(pg)} rounds' ratios "
      f"({pg[0]:.2f}x to {pg[-1]:.2f}x; ratio of the medians {g / floor:.2f}x); "
      f"target at most 1.20x: {'MET' if ok1 else 'MISSED'}")
print(f"graphmig / python = {mp:.2f}x, median of the rounds' ratios "
      f"(ratio of the medians {g / p:.2f}x); target below 1.00x: {'MET' if ok2 else 'MISSED'}")
print(f"load average (1, 5, 15 min) before: {load_before}, after: {load_after}"
      + ("   (busy machine: figures are skewed)" if float(load_after.split()[0]) > 2.5 else ""))
print(f"per migration: floor {1000 * floor / steps:.1f} ms, graphmig {1000 * g / steps:.1f} ms, "
      f"python {1000 * p / steps:.1f} ms")
PY
