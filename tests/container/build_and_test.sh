#!/usr/bin/env bash
# Build the digestbot image with buildah on the Debian stand-in base (no registry needed) and check it:
# non-root user, HEALTHCHECK/User/volume/entrypoint metadata, `digestbot --version`, `digestbot check`
# with a config mounted read-only at /config, a `run --dry-run --once` over the bundled demo feeds,
# and `digestbot healthcheck` against a bot running in the container.
#
#   bash tests/container/build_and_test.sh [--rebuild-base] [--no-cache] [--keep]
#
#   --rebuild-base   rebuild localhost/digestbot-test-base:bookworm (debootstrap) first
#   --no-cache       ignore buildah's layer cache
#   --keep           keep the working container and temp dirs (for poking around)
# Env: DIGESTBOT_IMAGE (default localhost/digestbot:test), DIGESTBOT_BASE_IMAGE,
#      DIGESTBOT_BUILD_LOG (default /var/cache/digestbot-container-test/build.log),
#      DIGESTBOT_CONTAINER_HEALTH_PORT (default 18080).
# Needs root (rootful buildah, --isolation chroot). Exits non-zero with a message on the first failure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
IMAGE=${DIGESTBOT_IMAGE:-localhost/digestbot:test}
BASE_IMAGE=${DIGESTBOT_BASE_IMAGE:-localhost/digestbot-test-base:bookworm}
CACHE_DIR=${DIGESTBOT_CONTAINER_CACHE:-/var/cache/digestbot-container-test}
BUILD_LOG=${DIGESTBOT_BUILD_LOG:-$CACHE_DIR/build.log}
HEALTH_PORT=${DIGESTBOT_CONTAINER_HEALTH_PORT:-18080}
EXPECTED_UID=10001
export DIGESTBOT_BASE_IMAGE=$BASE_IMAGE DIGESTBOT_CONTAINER_CACHE=$CACHE_DIR

BASE_ARGS=()
BUD_ARGS=()
KEEP=0
for arg in "$@"; do
    case "$arg" in
        --rebuild-base) BASE_ARGS+=(--rebuild) ;;
        --no-cache) BUD_ARGS+=(--no-cache) ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build_and_test: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

T0=$(date +%s.%N)
step_t=$T0
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log() { printf '[build_and_test %6.1fs] %s\n' "$(elapsed "$T0")" "$*"; }
step_done() { log "$1 ($(elapsed "$step_t")s)"; step_t=$(date +%s.%N); }
fail() { echo "build_and_test: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (rootful buildah with --isolation chroot)"

# ---------------------------------------------------------------- base image (+ buildah, debootstrap)
bash "$HERE/make_base_image.sh" "${BASE_ARGS[@]}" || fail "could not build the stand-in base image $BASE_IMAGE"
step_t=$(date +%s.%N)

exec 8>"$CACHE_DIR/build_and_test.lock"
flock 8

CTR=""
TMP=$(mktemp -d /tmp/digestbot-container-test.XXXXXX)
BG_PID=""
cleanup() {
    local rc=$?
    if [ -n "$BG_PID" ]; then  # the background `buildah run` (it SIGKILLs the bot on SIGTERM)
        kill -TERM "$BG_PID" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$BG_PID" 2>/dev/null || break; sleep 0.25; done
        kill -KILL "$BG_PID" 2>/dev/null || true
        wait "$BG_PID" 2>/dev/null || true
    fi
    if [ "$KEEP" -eq 1 ]; then
        [ -n "$CTR" ] && echo "kept working container $CTR (buildah rm $CTR), temp dir $TMP" >&2
    else
        if [ -n "$CTR" ]; then buildah rm "$CTR" >/dev/null 2>&1 || true; fi
        rm -rf "$TMP"
    fi
    if [ $rc -eq 0 ]; then log "all container checks passed (total $(elapsed "$T0")s)"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- build
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n1)
REVISION=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
CREATED=$(git -C "$ROOT" log -1 --format=%cI 2>/dev/null || echo unknown)
log "buildah bud -> $IMAGE (from $BASE_IMAGE; log: $BUILD_LOG)"
# --format docker: the OCI image config has no HEALTHCHECK field; buildah drops it otherwise.
# --layers: reuse unchanged steps (buildah's default is to cache nothing).
# buildah gives RUN steps the host's resolv.conf (also with --isolation chroot), so pip reaches PyPI.
if ! (cd "$ROOT" && buildah bud --isolation chroot --format docker --layers --pull=never \
        --build-arg "PYTHON_IMAGE=$BASE_IMAGE" \
        --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" --build-arg "CREATED=$CREATED" \
        "${BUD_ARGS[@]}" -t "$IMAGE" -f Dockerfile .) >"$BUILD_LOG" 2>&1; then
    tail -n 40 "$BUILD_LOG" >&2
    fail "buildah bud failed (full log: $BUILD_LOG). A failing 'pip install' usually means PyPI is unreachable from the build"
fi
steps=$(grep -c 'STEP [0-9]*/' "$BUILD_LOG" || true)
cached=$(grep -c '^--> Using cache' "$BUILD_LOG" || true)
step_done "image built: $steps steps, $cached from cache"

# ---------------------------------------------------------------- image metadata
# buildah's --format templates have no `json`; read the whole config with python3 instead.
buildah inspect --type image "$IMAGE" >"$TMP/inspect.json" || fail "buildah inspect $IMAGE failed"
meta() {
    python3 - "$TMP/inspect.json" "$1" <<'EOF'
import json, sys
cfg = json.load(open(sys.argv[1]))["Docker"]["config"]
value = cfg.get(sys.argv[2])
print(value if isinstance(value, str) else json.dumps(value, separators=(",", ":")))
EOF
}
user=$(meta User)
case "$user" in
    ""|null|0|0:*|root|root:*) fail "image User is '${user}' (must be the non-root digestbot user, uid $EXPECTED_UID)" ;;
esac
[ "$user" = "$EXPECTED_UID:$EXPECTED_UID" ] || fail "image User is '$user', expected $EXPECTED_UID:$EXPECTED_UID"
health=$(meta Healthcheck)
case "$health" in
    ""|null) fail "image has no HEALTHCHECK (buildah drops it unless built with --format docker)" ;;
    *'"digestbot","healthcheck"'*) ;;
    *) fail "HEALTHCHECK is $health, expected CMD digestbot healthcheck" ;;
esac
entry="$(meta Entrypoint) $(meta Cmd)"
[ "$entry" = '["digestbot"] ["run"]' ] || fail "ENTRYPOINT/CMD are $entry, expected [\"digestbot\"] [\"run\"]"
volumes=$(meta Volumes)
case "$volumes" in *'"/data"'*) ;; *) fail "VOLUME /data missing (volumes: $volumes)" ;; esac
ports=$(meta ExposedPorts)
case "$ports" in *8080/tcp*) ;; *) fail "EXPOSE 8080 missing (ports: $ports)" ;; esac
stopsig=$(meta StopSignal)
[ "$stopsig" = SIGTERM ] || fail "STOPSIGNAL is '$stopsig', expected SIGTERM"
env=$(meta Env)
for want in PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DIGESTBOT_DATA_DIR=/data DIGESTBOT_CONFIG=/config/digestbot.yaml; do
    case "$env" in *"\"$want\""*) ;; *) fail "image env lacks $want" ;; esac
done
labels=$(meta Labels)
case "$labels" in
    *"\"org.opencontainers.image.version\":\"$VERSION\""*) ;;
    *) fail "label org.opencontainers.image.version is not '$VERSION' (labels: $labels)" ;;
esac
health=$(python3 -c 'import json,sys; h=json.loads(sys.argv[1]); print(" ".join(h["Test"]), "every", h["Interval"]//10**9, "s")' "$health")
size=$(buildah images --format '{{.Size}}' "$IMAGE" | head -n1)
step_done "metadata OK: User $user, HEALTHCHECK $health, ENTRYPOINT/CMD $entry, VOLUME /data, EXPOSE 8080, size $size"

# ---------------------------------------------------------------- run checks
CTR=$(buildah from --pull-never --quiet "$IMAGE") || fail "buildah from $IMAGE failed"
# `buildah run` runs as the image's User and with its Env, but ignores ENTRYPOINT: name the program.
crun() { buildah run --isolation chroot "$@"; }
run_check() {  # run_check DESCRIPTION [buildah run options] -- COMMAND...; output in $OUT
    local what=$1; shift
    if ! OUT=$(crun "$@" 2>&1); then
        printf '%s\n' "$OUT" | tail -n 30 >&2
        fail "$what"
    fi
}

run_check "cannot run 'id' in the container" "$CTR" -- sh -c 'id -u; id -un; test -w /data && echo data-writable; test -w /opt/venv || echo venv-readonly'
read -r -d '' uid name data_w venv_ro <<<"$OUT" || true
[ "$uid" != 0 ] || fail "the container runs as root"
{ [ "$uid" = "$EXPECTED_UID" ] && [ "$name" = digestbot ]; } || fail "runs as '$uid/$name', expected $EXPECTED_UID/digestbot"
[ "$data_w" = data-writable ] || fail "/data is not writable by the digestbot user"
[ "$venv_ro" = venv-readonly ] || fail "/opt/venv is writable by the digestbot user (should be root-owned)"
step_done "runs as $name (uid $uid); /data writable, /opt/venv read-only"

run_check "'digestbot --version' failed" "$CTR" -- digestbot --version
[ "$OUT" = "digestbot $VERSION" ] || fail "'digestbot --version' printed '$OUT', expected 'digestbot $VERSION'"
version_out=$OUT
run_check "'digestbot --help' failed" "$CTR" -- digestbot --help
step_done "digestbot --version: $version_out; --help OK"

# The example config, mounted read-only at /config like docker-compose.yml does.
mkdir -p "$TMP/config"
cp "$ROOT/config/digestbot.example.yaml" "$TMP/config/digestbot.yaml"
cp "$ROOT"/config/*.yaml "$TMP/config/" 2>/dev/null || true
rm -f "$TMP/config/digestbot.example.yaml"
chmod -R a+rX "$TMP"
run_check "'digestbot check' rejected the example config mounted at /config" \
    -v "$TMP/config:/config:ro" "$CTR" -- digestbot check --config /config/digestbot.yaml
grep -q "config /config/digestbot.yaml: OK" <<<"$OUT" || { printf '%s\n' "$OUT" >&2; fail "'digestbot check' did not report the config OK"; }
grep -q "database: /data/" <<<"$OUT" || { printf '%s\n' "$OUT" >&2; fail "the database is not under /data (DIGESTBOT_DATA_DIR)"; }
check_summary=$(grep -m1 '^sources:' <<<"$OUT" || true)
# DIGESTBOT_CONFIG alone (no --config) finds it too, and the mount really is read-only.
run_check "'digestbot check' without --config did not use \$DIGESTBOT_CONFIG" \
    -v "$TMP/config:/config:ro" "$CTR" -- sh -c 'digestbot check >/dev/null && ! touch /config/x 2>/dev/null'
step_done "digestbot check OK with /config mounted read-only ($check_summary)"

# Dry run over the bundled demo (no --config, so DIGESTBOT_CONFIG must be unset for it to be used).
run_check "'digestbot run --dry-run --once' over the bundled demo failed (does it work outside the container: python3 -m bot run --dry-run --once ?)" \
    -e DIGESTBOT_CONFIG= "$CTR" -- digestbot run --dry-run --once
dry=$OUT
titles=$(python3 - "$ROOT/bot/demo/feeds" <<'EOF'
import json, pathlib, re, sys, html
for f in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    text = f.read_text(encoding="utf-8")
    if f.suffix == ".json":
        print("\n".join(i.get("title", "") for i in json.loads(text).get("items", [])))
    else:  # entry/item titles, not the feed's own
        for block in re.findall(r"<(?:item|entry)\b.*?</(?:item|entry)>", text, re.S):
            m = re.search(r"<title[^>]*>(.*?)</title>", block, re.S)
            if m:
                print(html.unescape(re.sub(r"<!\[CDATA\[(.*?)\]\]>", r"\1", m.group(1))).strip())
EOF
)
shown=0
while IFS= read -r t; do
    [ -n "$t" ] && grep -qF -- "$t" <<<"$dry" && shown=$((shown + 1))
done <<<"$titles"
if [ "$shown" -eq 0 ]; then
    printf '%s\n' "$dry" | tail -n 30 >&2
    fail "the dry run printed none of the demo feed titles"
fi
grep -q "FAIL" <<<"$dry" && { printf '%s\n' "$dry" | grep FAIL >&2; fail "a demo source failed in the dry run"; }
step_done "dry run over the bundled demo printed $shown demo entries"

# HEALTHCHECK plumbing: a bot (dry-run mode: no Discord) with the health endpoint on, then
# `digestbot healthcheck` from a second process in the same container. --isolation chroot shares
# the host's network, so a free port is used instead of 8080.
mkdir -p "$TMP/health/feeds"
cp "$ROOT"/bot/demo/feeds/* "$TMP/health/feeds/"
cp "$ROOT/bot/demo/topics.yaml" "$TMP/health/"
first_feed=$(find "$TMP/health/feeds" -maxdepth 1 -type f -printf '%f\n' | sort | head -n1)
cat >"$TMP/health/digestbot.yaml" <<EOF
storage:
  path: health.sqlite3
health:
  enabled: true
  host: 127.0.0.1
  port: $HEALTH_PORT
include:
  - topics.yaml
sources:
  - name: Health Demo
    id: health-demo
    url: file:feeds/$first_feed
    channels: [100000000000000001]
EOF
chmod -R a+rX "$TMP"
crun -v "$TMP/health:/config:ro" "$CTR" -- digestbot healthcheck >/dev/null 2>&1 \
    && fail "'digestbot healthcheck' exited 0 with no bot running (port $HEALTH_PORT busy?)"
# not through the crun function: $! must be buildah's own pid (it forwards SIGTERM to the bot)
buildah run --isolation chroot -v "$TMP/health:/config:ro" "$CTR" -- digestbot run --dry-run >"$TMP/bot.log" 2>&1 &
BG_PID=$!
healthy=0
for _ in $(seq 1 60); do
    if OUT=$(crun -e "DIGESTBOT_HEALTH_PORT=$HEALTH_PORT" "$CTR" -- digestbot healthcheck 2>&1); then healthy=1; break; fi
    kill -0 "$BG_PID" 2>/dev/null || break
    sleep 0.5
done
if [ "$healthy" -ne 1 ]; then
    tail -n 30 "$TMP/bot.log" >&2
    printf 'last healthcheck: %s\n' "$OUT" >&2
    fail "'digestbot healthcheck' never succeeded against 'digestbot run --dry-run' with health on port $HEALTH_PORT"
fi
# docker stop: SIGTERM (STOPSIGNAL) to the container's main process, SIGKILL after 10s. The bot must
# exit 0 well before that. `buildah run` itself answers SIGTERM with SIGKILL to its child, so signal
# the bot's python process (a descendant of our buildah run) directly.
descendants() { local c; for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do echo "$c"; descendants "$c"; done; }
bot_pid=""
for p in $(descendants "$BG_PID"); do
    case "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" in
        *python*digestbot\ run*) bot_pid=$p ;;
    esac
done
[ -n "$bot_pid" ] || fail "cannot find the bot's process under 'buildah run' (pid $BG_PID)"
kill -TERM "$bot_pid"
stopped=0
for _ in $(seq 1 40); do kill -0 "$BG_PID" 2>/dev/null || { stopped=1; break; }; sleep 0.25; done
[ "$stopped" -eq 1 ] || { tail -n 20 "$TMP/bot.log" >&2; fail "the bot did not stop within 10s of SIGTERM"; }
bot_rc=0
wait "$BG_PID" || bot_rc=$?
BG_PID=""
[ "$bot_rc" -eq 0 ] || { tail -n 20 "$TMP/bot.log" >&2; fail "the bot exited with status $bot_rc on SIGTERM (expected a clean 0)"; }
step_done "digestbot healthcheck OK against a running bot ($(tr -d '\n' <<<"$OUT" | cut -c1-100)); exited 0 on SIGTERM"

# Nothing but /data (a volume), /tmp and /var/tmp may be written, so docker-compose.yml's `read_only: true`
# with tmpfs /tmp and /var/tmp works: look at the working container's overlay upper layer after all the runs.
MNT=$(buildah mount "$CTR")
upper=$(awk -v m="$MNT" '$2 == m { print $4 }' /proc/mounts | tr , '\n' | sed -n 's/^upperdir=//p' | head -n1)
if [ -n "$upper" ] && [ -d "$upper" ]; then
    written=$(cd "$upper" && find . -mindepth 1 \
        \( -path ./run -o -path ./tmp -o -path ./var/tmp -o -path ./data -o -path ./etc/hosts -o -path ./etc/resolv.conf \
           -o -path ./etc/hostname -o -path ./dev -o -path ./proc -o -path ./sys \) -prune -o ! -type d -print | head -n 20)
    buildah umount "$CTR" >/dev/null
    [ -z "$written" ] || fail "the bot wrote outside /data and /tmp (with read_only: true only /data, /tmp and /var/tmp are writable): $(tr '\n' ' ' <<<"$written")"
    step_done "no writes outside /data, /tmp, /var/tmp (a read-only root filesystem is fine)"
else
    buildah umount "$CTR" >/dev/null
    log "skipped the read-only root check (storage driver $(buildah info --format '{{.store.GraphDriverName}}' 2>/dev/null || echo '?') has no overlay upper dir)"
fi
