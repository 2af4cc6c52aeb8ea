#!/usr/bin/env bash
# Runs a command inside Linux 5.10 (Debian bullseye's kernel) under QEMU, in this
# checkout's folder, and exits with the command's exit status:
#
#   scripts/old-kernel.sh node --test src/netlink/rtnetlink.kernel.test.ts
#
# The guest sees the host's root file system read-only over 9p (virtio), with a RAM
# overlay on top, so the project, node_modules and every host tool are at the same
# paths; it has its own /run, /tmp, /proc, /sys and /dev. A small initramfs (busybox
# and the modules 9p needs) mounts all that, loads the modules the tests need and runs
# the command as root with no TTY. The command's output (stdout and stderr together)
# comes out on this script's stdout; the guest's console goes to a log whose tail is
# printed when something goes wrong.
#
# Exit status: the command's own, or
#   251  the guest kernel panicked
#   252  the time limit ran out (PURELB_OLD_KERNEL_TIMEOUT seconds, default 900)
#   253  the guest ended without reporting the command's status (boot failure, QEMU error)
#   254  the command failed and a process in the guest died of a signal (its backtrace,
#        from the core, is in the output)
#
# KVM is used when /dev/kvm opens and the CPU shows vmx/svm; else software emulation
# (TCG), where a trivial command takes about 13 s, boot included.
#
# Downloads (the kernel package, once) are cached in
# ${PURELB_CACHE_DIR:-/var/cache/purelb-ts}/old-kernel/: bullseye is leaving the mirror.
set -euo pipefail

KERNEL_PACKAGE=linux-image-5.10.0-32-amd64
KERNEL_RELEASE=5.10.0-32-amd64
MIRROR=${PURELB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${PURELB_CACHE_DIR:-/var/cache/purelb-ts}/old-kernel
TIMEOUT=${PURELB_OLD_KERNEL_TIMEOUT:-900}
MEMORY_MIB=${PURELB_OLD_KERNEL_MEMORY_MIB:-3072}
# PURELB_OLD_KERNEL_NET=user gives the guest an eth0 (10.0.2.15/24, QEMU's user-mode
# network): its TCP connections leave as the host's own, so the guest reaches the lab's
# API server at its host address (bench/old-kernel.ts). Off by default: the tests need none.
NET=${PURELB_OLD_KERNEL_NET:-none}
[[ $NET == none || $NET == user ]] || { echo "old-kernel.sh: PURELB_OLD_KERNEL_NET must be none or user" >&2; exit 2; }
# Loaded in the guest before the command: what the kernel tests create or use.
GUEST_MODULES=(veth bridge dummy ifb af_packet)
# Needed to mount the host's root, so they go into the initramfs.
BOOT_MODULES=(virtio_pci 9pnet_virtio 9p overlay)

die() { echo "old-kernel.sh: $*" >&2; exit 253; }
[[ $# -gt 0 ]] || { echo "usage: scripts/old-kernel.sh COMMAND [ARG...]" >&2; exit 2; }
[[ $(id -u) == 0 ]] || die "must run as root (it installs packages and boots a VM)"
project=$(cd "$(dirname "$0")/.." && pwd -P)

# --- what it needs ------------------------------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[[ -x /bin/busybox ]] && /bin/busybox --list 2>/dev/null | grep -x switch_root >/dev/null || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v depmod >/dev/null || need+=(kmod)
command -v gdb >/dev/null || need+=(gdb)
if [[ ${#need[@]} -gt 0 ]]; then
  echo "old-kernel.sh: installing ${need[*]}" >&2
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; } ||
    die "could not install ${need[*]} with apt-get"
fi

mkdir -p "$CACHE"
tree=$CACHE/$KERNEL_RELEASE
if [[ ! -f $tree/.complete ]]; then
  deb=$(ls "$CACHE/${KERNEL_PACKAGE}"_*_amd64.deb 2>/dev/null | head -1 || true)
  if [[ -z $deb ]]; then
    echo "old-kernel.sh: downloading $KERNEL_PACKAGE from $MIRROR (bullseye)" >&2
    index=$CACHE/bullseye-Packages.xz
    curl -fsSL --retry 3 -o "$index.part" "$MIRROR/dists/bullseye/main/binary-amd64/Packages.xz" && mv "$index.part" "$index" ||
      die "cannot fetch the bullseye Packages index from $MIRROR (bullseye may have left the mirror; put ${KERNEL_PACKAGE}_*_amd64.deb into $CACHE)"
    read -r filename sha256 < <(xz -dc "$index" | awk -v p="$KERNEL_PACKAGE" '
      $1 == "Package:" { hit = ($2 == p) } hit && $1 == "Filename:" { f = $2 } hit && $1 == "SHA256:" { s = $2 }
      hit && /^$/ { print f, s; exit }')
    [[ -n ${filename:-} && -n ${sha256:-} ]] || die "$KERNEL_PACKAGE is not in the bullseye index of $MIRROR"
    deb=$CACHE/$(basename "$filename")
    curl -fsSL --retry 3 -o "$deb.part" "$MIRROR/$filename" || die "cannot download $MIRROR/$filename"
    echo "$sha256  $deb.part" | sha256sum -c --quiet - || { rm -f "$deb.part"; die "$filename: SHA256 mismatch"; }
    mv "$deb.part" "$deb"
  fi
  rm -rf "$tree.part"
  dpkg-deb -x "$deb" "$tree.part"
  # The package ships no modules.dep (its postinst makes it): make it here.
  depmod -b "$tree.part" "$KERNEL_RELEASE"
  rm -rf "$tree" && mv "$tree.part" "$tree" && touch "$tree/.complete"
fi
kernel=$tree/boot/vmlinuz-$KERNEL_RELEASE
modules=$tree/lib/modules/$KERNEL_RELEASE

# --- the initramfs: busybox, /init, the boot modules (rebuilt when this script changes)
stamp=$(cat "$0" | sha256sum | cut -c1-12)
initrd=$CACHE/initrd-$stamp.cpio.gz
if [[ ! -f $initrd ]]; then
  staging=$(mktemp -d)
  trap 'rm -rf "$staging"' EXIT
  mkdir -p "$staging"/{bin,dev,proc,sys,mnt/lower,mnt/rw,mnt/root,modules}
  cp /bin/busybox "$staging/bin/busybox"
  for tool in sh mount umount mkdir cat echo insmod poweroff sleep cp chroot grep sed tail; do ln -s busybox "$staging/bin/$tool"; done
  : > "$staging/modules/order"
  for wanted in "${BOOT_MODULES[@]}"; do
    for m in $(modprobe -d "$tree" -S "$KERNEL_RELEASE" --show-depends "$wanted" | awk '$1 == "insmod" { print $2 }'); do
      grep -qx "$(basename "$m")" "$staging/modules/order" && continue
      cp "$m" "$staging/modules/"
      basename "$m" >> "$staging/modules/order"
    done
  done
  cat > "$staging/init" <<'INIT'
#!/bin/sh
# The guest's first process: mount the host's root read-only with a RAM overlay, run
# the job, report its status on the console, power off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do insmod /modules/$m || echo "insmod $m failed"; done
job=$(sed -n 's/.*plb.job=\([^ ]*\).*/\1/p' /proc/cmdline)
nonce=$(sed -n 's/.*plb.nonce=\([^ ]*\).*/\1/p' /proc/cmdline)
fail() { echo "PLB-INIT-FAILED-$nonce: $*"; poweroff -f; }
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /mnt/lower || fail "mount 9p"
mount -t tmpfs -o size=75% rw /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work overlay /mnt/root || fail "mount overlay"
r=/mnt/root
mount -t proc proc $r/proc
mount -t sysfs sys $r/sys
mount -t devtmpfs dev $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts devpts $r/dev/pts
mount -t tmpfs shm $r/dev/shm
mount -t tmpfs run $r/run
mount -t tmpfs tmp $r/tmp
mount -t cgroup2 cgroup2 $r/sys/fs/cgroup 2>/dev/null
cp /mnt/lower$job/run.sh $r/run/plb-job.sh || fail "read job $job"
echo "PLB-JOB-START-$nonce"
chroot $r /bin/bash /run/plb-job.sh > /dev/ttyS1 2>&1 < /dev/null
status=$?
echo "PLB-EXIT-$nonce=$status"
poweroff -f
INIT
  chmod +x "$staging/init"
  (cd "$staging" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd.part"
  mv "$initrd.part" "$initrd"
  rm -rf "$staging"
  trap - EXIT
fi

# --- the job --------------------------------------------------------------------------
job=$(mktemp -d /var/tmp/plb-old-kernel.XXXXXX)
console=$job/console.log
cleanup() { rm -rf "$job"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
time_scale=20
if [[ -r /dev/kvm && -w /dev/kvm ]] && grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then time_scale=2; fi
nonce=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
{
  echo "set -e"
  # The environment that matters to the tests, then the modules, then the command.
  for v in PATH HOME LANG CI $(compgen -e | grep -E '^(PURELB_|NODE_)' || true); do
    [[ -v $v ]] && printf 'export %s=%q\n' "$v" "${!v}"
  done
  echo "export TERM=dumb"
  # Compiling JavaScript is most of a Node start under emulation: once per boot, not per process.
  echo "export NODE_COMPILE_CACHE=/tmp/node-compile-cache"
  # Time bounds in tests stretch by this factor: software emulation is ~20x slower.
  echo "export PURELB_TIME_SCALE=$time_scale"
  echo "mkdir -p /lib/modules && mount --bind $(printf %q "$tree/lib/modules") /lib/modules"
  echo "modprobe -a ${GUEST_MODULES[*]}"
  echo "ip link set lo up"
  if [[ $NET == user ]]; then
    echo "modprobe virtio_net"
    echo "ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2"
  fi
  printf 'cd %q\n' "$PWD"
  # A process that dies of a signal leaves a core; its backtrace goes to the output, so
  # that a crash in the guest (seen once in CI: a test fixture's SIGSEGV) is explained.
  echo "ulimit -c unlimited"
  echo "echo /tmp/core.%e.%p > /proc/sys/kernel/core_pattern"
  echo "set +e"
  printf '%q ' "$@"
  echo
  echo 'status=$? crashed=0'
  echo 'for core in /tmp/core.*; do'
  echo '  [ -e "$core" ] || continue'
  echo '  crashed=1'
  echo '  echo "old-kernel.sh: $core: a process in the guest died of a signal; its backtrace:"'
  echo '  gdb -batch -ex "bt 25" -ex "x/4i \$pc" "$(readlink -f "$(command -v node)")" "$core" 2>&1 | grep -v "^\[New LWP" | tail -60'
  echo 'done'
  echo 'if [ $status != 0 ] && [ $crashed = 1 ]; then echo "old-kernel.sh: the command failed (exit $status) and a process died of a signal"; exit 254; fi'
  echo 'exit $status'
} > "$job/run.sh"

accel=tcg,thread=multi
# Under emulation, a CPU model whose instructions TCG has emulated for a long time
# (SSE4.2, no AVX: QEMU 7.2 was the first to emulate AVX/AVX2, and V8 and glibc pick
# AVX code paths when the CPU offers them).
cpu=${PURELB_OLD_KERNEL_CPU:-Nehalem}
if [[ -r /dev/kvm && -w /dev/kvm ]] && grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then
  accel=kvm
  cpu=host
fi
# One vCPU under emulation. With two (multi-threaded TCG, QEMU 7.2), a Node process in
# the guest now and then jumped into code that read as zeros, always at the same offset of
# a builtin and right after V8 compiled a function with Sparkplug: SIGSEGV in 2 of 3 runs
# of the kernel tier here, 0 of 7 with one vCPU; not the compile cache (3 of 3 crashed
# without it). Runs take ~25% longer. KVM keeps two.
smp=1
[[ $accel == kvm ]] && smp=$(( $(nproc) < 2 ? 1 : 2 ))
net_args=()
[[ $NET == user ]] && net_args=(-netdev user,id=net0 -device virtio-net-pci,netdev=net0)

started=$(date +%s)
set +e
# The time limit: `timeout` kills QEMU (not the whole guest's work: that is QEMU).
timeout --signal=KILL "$TIMEOUT" qemu-system-x86_64 \
  -accel "$accel" -cpu "$cpu" -smp "$smp" -m "$MEMORY_MIB" \
  -nodefaults -no-user-config -display none -no-reboot \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 loglevel=4 panic=-1 rdinit=/init plb.job=$job plb.nonce=$nonce" \
  -fsdev local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
  "${net_args[@]}" \
  -serial "file:$console" \
  -chardev stdio,id=out,signal=off -serial chardev:out \
  < /dev/null
qemu_status=$?
set -e
elapsed=$(( $(date +%s) - started ))

tail_console() { echo "--- last lines of the guest's console ($console):" >&2; tail -n 40 "$console" | sed 's/^/  /' >&2; }
status=$(sed -n "s/^PLB-EXIT-$nonce=\([0-9]*\).*/\1/p" "$console" | tail -1)
if [[ -n $status ]]; then
  echo "old-kernel.sh: Linux $KERNEL_RELEASE ($accel): exit $status after ${elapsed} s" >&2
  exit "$status"
fi
if grep -q 'Kernel panic' "$console"; then
  echo "old-kernel.sh: the guest kernel panicked after ${elapsed} s" >&2; tail_console; exit 251
fi
if (( qemu_status == 124 || qemu_status == 137 )); then
  echo "old-kernel.sh: time limit of ${TIMEOUT} s ran out (PURELB_OLD_KERNEL_TIMEOUT)" >&2; tail_console; exit 252
fi
echo "old-kernel.sh: the guest ended after ${elapsed} s without reporting the command's status" >&2
tail_console
exit 253
