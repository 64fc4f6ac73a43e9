#!/usr/bin/env bash
# Build the stand-in for python:3.11-slim used by the container test: Debian bookworm (minbase)
# with python3, python3-venv and ca-certificates, tagged localhost/digestbot-test-base:bookworm.
# No registry is involved: the root filesystem comes from debootstrap and the Debian mirror that
# apt is configured with on this machine.
#
#   bash tests/container/make_base_image.sh            # build once; a no-op when the image exists
#   bash tests/container/make_base_image.sh --rebuild  # build again
#
# Env: DIGESTBOT_BASE_IMAGE (tag), DIGESTBOT_DEBIAN_MIRROR (default: from /etc/apt/sources*),
#      DIGESTBOT_DEBIAN_SUITE (bookworm), DIGESTBOT_HOST_CA=0 to not copy this machine's extra CA
#      certificates (/usr/local/share/ca-certificates) into the image.
# Needs root. Installs buildah and debootstrap with apt-get when they are missing.
set -euo pipefail

BASE_IMAGE=${DIGESTBOT_BASE_IMAGE:-localhost/digestbot-test-base:bookworm}
SUITE=${DIGESTBOT_DEBIAN_SUITE:-bookworm}
HOST_CA=${DIGESTBOT_HOST_CA:-1}
CACHE_DIR=${DIGESTBOT_CONTAINER_CACHE:-/var/cache/digestbot-container-test}
REBUILD=0

for arg in "$@"; do
    case "$arg" in
        --rebuild) REBUILD=1 ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "make_base_image: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

T0=$(date +%s.%N)
step_t=$T0
die() { echo "make_base_image: ERROR: $*" >&2; exit 1; }
step_done() {  # print how long the step took
    local now; now=$(date +%s.%N)
    log "$1 took $(awk -v a="$step_t" -v b="$now" 'BEGIN{printf "%.1f", b-a}')s"
    step_t=$now
}
log() { printf '[make_base_image %6.1fs] %s\n' "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')" "$*"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot and rootful buildah)"

mkdir -p "$CACHE_DIR"

# ---------------------------------------------------------------- tools
need_pkgs=()
command -v buildah >/dev/null 2>&1 || need_pkgs+=(buildah)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$CACHE_DIR/apt.log" 2>&1 || { tail -n 20 "$CACHE_DIR/apt.log" >&2; die "apt-get update failed"; }
    # --no-install-recommends: rootful buildah with --isolation chroot needs no runc/crun/fuse-overlayfs
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >>"$CACHE_DIR/apt.log" 2>&1 \
        || { tail -n 20 "$CACHE_DIR/apt.log" >&2; die "apt-get install ${need_pkgs[*]} failed"; }
    step_done "apt-get install ${need_pkgs[*]}"
fi
[ -e /etc/containers/policy.json ] || die "/etc/containers/policy.json missing (package golang-github-containers-common)"

# one build at a time (pytest and a manual run may overlap)
exec 9>"$CACHE_DIR/make_base_image.lock"
flock 9

if [ "$REBUILD" -eq 0 ] && buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE already present (--rebuild to build it again)"
    exit 0
fi

# ---------------------------------------------------------------- mirror
mirror_from_apt() {
    # deb822 .sources files: a stanza whose Suites include $SUITE (not -security/-updates)
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        awk -v suite="$SUITE" '
            function flush() { if (uris != "" && suites ~ ("(^| )" suite "( |$)") && types ~ /(^| )deb( |$)/) { split(uris, u, " "); print u[1]; found = 1; exit } uris = ""; suites = ""; types = "" }
            /^[ \t]*$/ { flush(); next }
            /^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
            /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
            /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
            END { if (!found) flush() }' "$f"
    done
    # one-line format
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk -v suite="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i+1) == suite) print $i }'
}
MIRROR=${DIGESTBOT_DEBIAN_MIRROR:-$(mirror_from_apt | grep -E '^https?://' | head -n1 || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
log "mirror $MIRROR, suite $SUITE"

# ---------------------------------------------------------------- rootfs
ROOTFS=""
CTR=""
cleanup() {
    local rc=$?
    if [ -n "$CTR" ]; then
        buildah umount "$CTR" >/dev/null 2>&1 || true
        buildah rm "$CTR" >/dev/null 2>&1 || true
    fi
    if [ -n "$ROOTFS" ] && [ -d "$ROOTFS" ]; then
        # debootstrap may leave /proc, /sys or a bind-mounted /dev behind when interrupted: unmount
        # everything below ROOTFS (deepest first) and never cross into another filesystem.
        local m
        awk -v r="$ROOTFS" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r \
            | while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
        if awk -v r="$ROOTFS" '$5 == r || index($5, r "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
            echo "make_base_image: WARNING: mounts remain under $ROOTFS; not deleting it" >&2
        else
            rm -rf --one-file-system "$ROOTFS"
        fi
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ROOTFS=$(mktemp -d /var/tmp/digestbot-base-rootfs.XXXXXX)
mkdir -p "$CACHE_DIR/debs"
log "debootstrap --variant=minbase $SUITE (python3 python3-venv ca-certificates)"
# --include resolves dependencies and installs them in the same pass, which is faster than an
# apt-get update + install in the chroot afterwards. --cache-dir keeps the .debs for --rebuild.
if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        --cache-dir="$CACHE_DIR/debs" "$SUITE" "$ROOTFS" "$MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1; then
    tail -n 30 "$CACHE_DIR/debootstrap.log" >&2
    [ -f "$ROOTFS/debootstrap/debootstrap.log" ] && tail -n 30 "$ROOTFS/debootstrap/debootstrap.log" >&2
    die "debootstrap failed (full log: $CACHE_DIR/debootstrap.log)"
fi
step_done "debootstrap"

extra_env=()
if [ "$HOST_CA" = 1 ] && compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    # This machine reaches PyPI through a TLS-intercepting proxy; a local base image trusting the
    # same extra CAs is what a corporate base image would do. pip in a venv uses its own certifi
    # bundle unless told otherwise, hence PIP_CERT.
    log "adding this machine's extra CA certificates: $(find /usr/local/share/ca-certificates -maxdepth 1 -name '*.crt' -printf '%f ')"
    mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
    chroot "$ROOTFS" update-ca-certificates >"$CACHE_DIR/update-ca-certificates.log" 2>&1 \
        || { cat "$CACHE_DIR/update-ca-certificates.log" >&2; die "update-ca-certificates failed in the rootfs"; }
    extra_env+=(--env PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
fi

# sanity: what the Dockerfile relies on
chroot "$ROOTFS" python3 -c 'import sys, venv, ensurepip, ssl; assert sys.version_info >= (3, 11), sys.version' \
    || die "python3/python3-venv not usable in the rootfs"
chroot "$ROOTFS" sh -c 'command -v useradd >/dev/null && command -v groupadd >/dev/null' \
    || die "useradd/groupadd missing from the rootfs (package passwd)"

# slim it down like the official images
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
       "$ROOTFS"/var/cache/apt/archives/partial/* "$ROOTFS"/var/log/*.log "$ROOTFS"/debootstrap \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
       "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/*
: >"$ROOTFS/etc/resolv.conf"   # the build engine provides its own
: >"$ROOTFS/etc/hostname"
step_done "configure rootfs ($(du -sh --one-file-system "$ROOTFS" | cut -f1))"

# ---------------------------------------------------------------- image
CTR=$(buildah from --quiet scratch)
MNT=$(buildah mount "$CTR")
tar -C "$ROOTFS" --one-file-system --numeric-owner -cf - . | tar -C "$MNT" --numeric-owner -xpf -
buildah umount "$CTR" >/dev/null
buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 \
    "${extra_env[@]}" \
    --cmd python3 \
    --label org.opencontainers.image.title=digestbot-test-base \
    --label "org.opencontainers.image.description=stand-in for python:3.11-slim ($SUITE minbase + python3, python3-venv, ca-certificates)" \
    "$CTR"
buildah commit --quiet --rm "$CTR" "$BASE_IMAGE" >/dev/null
CTR=""
step_done "buildah commit"
log "built $BASE_IMAGE ($(buildah images --format '{{.Size}}' "$BASE_IMAGE" 2>/dev/null | head -n1))"
