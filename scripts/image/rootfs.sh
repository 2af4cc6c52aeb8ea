#!/usr/bin/env bash
# Assembles the purelb-ts image's root file system apart from /app, the same for
# scripts/image.sh and the Dockerfile's build stage (both run this script):
#   /usr/local/bin/node   the given node, stripped of its symbol table (.dynsym stays, so
#                         N-API addons still find node's functions)
#   /usr/lib/<triplet>/   the shared libraries that node and the addons need: the closure
#                         of their ELF NEEDED entries (the dynamic loader among them), each
#                         under its soname, from Debian's .deb files; /lib and /lib64 link
#                         into /usr as in Debian, and the loader sits where PT_INTERP names
#                         it. The default search path of Debian's loader covers the folder,
#                         so no /etc/ld.so.cache is needed.
#   /usr/share/doc/<package>/copyright   of each package a library came from
#   /etc/passwd, /etc/group   root and nobody (65534), for the images' users
#   /tmp                  empty, 1777
# No shell, no coreutils, no package manager: the components need none.
#
#   scripts/image/rootfs.sh --packages                        the Debian packages to download
#   scripts/image/rootfs.sh DEBS NODE ROOTFS [ADDON_DIR...]
#     DEBS: a folder holding those packages' .deb files; ADDON_DIR: folders whose ELF
#     files (the native addons) are loaded by node and need libraries too.
set -euo pipefail
shopt -s inherit_errexit
export LC_ALL=C
umask 022

# gcc-12-base carries the copyright that libgcc-s1's and libstdc++6's doc folders link to.
packages=(libc6 libgcc-s1 libstdc++6 gcc-12-base)
if [ "${1:-}" = --packages ]; then echo "${packages[*]}"; exit 0; fi
[ $# -ge 3 ] || { echo "usage: scripts/image/rootfs.sh --packages | DEBS NODE ROOTFS [ADDON_DIR...]" >&2; exit 2; }
debs=$1 node=$2 rootfs=$3
shift 3

die() { echo "rootfs.sh: $*" >&2; exit 1; }
[ ! -e "$rootfs" ] || [ -z "$(ls -A "$rootfs")" ] || die "$rootfs is not empty"
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT

# Each package in a folder of its own, so that a library's package is known.
for deb in "$debs"/*.deb; do
  p=$(dpkg-deb -f "$deb" Package)
  if [[ " ${packages[*]} " == *" $p "* ]]; then
    [ ! -e "$unpacked/$p" ] || die "two .deb files of $p in $debs"
    dpkg-deb -x "$deb" "$unpacked/$p"
  fi
done
for p in "${packages[@]}"; do [ -d "$unpacked/$p" ] || die "no .deb of $p in $debs"; done
libc=$(find "$unpacked/libc6" -name libc.so.6 -print -quit)
[ -n "$libc" ] || die "libc6 has no libc.so.6"
triplet=$(basename "$(dirname "$libc")")
libdir=usr/lib/$triplet

needed() { readelf -d --wide "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'; }
is_elf() { [ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }

mkdir -p "$rootfs/usr/local/bin" "$rootfs/$libdir" "$rootfs/etc" "$rootfs/tmp"
strip -o "$rootfs/usr/local/bin/node" "$node"
chmod 0755 "$rootfs/usr/local/bin/node"

interp=$(readelf -l --wide "$node" | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
[[ "$interp" == /lib*/* ]] || die "$node: unexpected program interpreter '$interp'"
for d in lib "$(dirname "${interp#/}")"; do
  [ -L "$rootfs/$d" ] || { mkdir -p "$rootfs/usr/$d"; ln -s "usr/$d" "$rootfs/$d"; }
done

queue=("$rootfs/usr/local/bin/node")
for dir in "$@"; do
  while IFS= read -r -d '' f; do is_elf "$f" && queue+=("$f"); done < <(find "$dir" -type f -print0 | sort -z)
done
declare -A taken=() from=()
for ((i = 0; i < ${#queue[@]} && i < 1000; i++)); do
  for soname in $(needed "${queue[$i]}"); do
    [ -z "${taken[$soname]:-}" ] || continue
    for p in "${packages[@]}"; do
      for d in lib usr/lib; do
        if [ -f "$unpacked/$p/$d/$triplet/$soname" ]; then
          # Under its soname only: the versioned file name and its link would be two names for one file.
          cp -L --preserve=mode "$unpacked/$p/$d/$triplet/$soname" "$rootfs/$libdir/$soname"
          taken[$soname]=$p from[$p]=1
          queue+=("$rootfs/$libdir/$soname")
          break 2
        fi
      done
    done
    [ -n "${taken[$soname]:-}" ] || die "${queue[$i]#"$rootfs"} needs $soname, which none of ${packages[*]} has"
  done
done
[ -f "$rootfs/$libdir/$(basename "$interp")" ] || die "the loader $interp is not among the libraries"
ln -s "/lib/$triplet/$(basename "$interp")" "$rootfs/usr/${interp#/}"

for p in "${!from[@]}"; do
  doc=$unpacked/$p/usr/share/doc/$p
  mkdir -p "$rootfs/usr/share/doc"
  if [ -L "$doc" ]; then
    # As Debian ships it: the folder links to the one that holds the copyright.
    target=$(readlink "$doc")
    ln -s "$target" "$rootfs/usr/share/doc/$p"
    p=$target doc=$unpacked/$target/usr/share/doc/$target
  fi
  [ -f "$doc/copyright" ] || die "no copyright file for $p"
  install -D -m 0644 "$doc/copyright" "$rootfs/usr/share/doc/$p/copyright"
done

printf '%s\n' 'root:x:0:0:root:/root:/usr/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"
chmod 0755 "$rootfs"
# The loader finds every library without /etc/ld.so.cache, and node starts.
chroot "$rootfs" /usr/local/bin/node -e 0 || die "node does not start in $rootfs"
