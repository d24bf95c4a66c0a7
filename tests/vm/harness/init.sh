#!/bin/sh
# Stage 1 of the rds-csi test guest: PID 1 in the initramfs (busybox only).
#
# It mounts the host's root filesystem (virtio-fs tag "hostroot", read-only) under a tmpfs
# overlay, so the guest has the host's Python, venv, tools and checkout while every write stays in
# guest RAM; mounts the directories the root share does not show (tags x0, x1, ...: a checkout or
# venv on another mount or under /tmp) the same way at their host paths; mounts the job directory
# (tag "results", read-write) at its host path; loads the modules the job asked for; runs the job
# in a chroot; writes its exit status next to its output; and powers off. Lines starting
# "@@rdsvm" are the harness's markers on the console.
export PATH=/bin

up() { read -r u _ < /proc/uptime; echo "$u"; }
mark() { echo "@@rdsvm $* uptime=$(up)"; }
halt() {
  sync
  poweroff -f
  echo o > /proc/sysrq-trigger
  sleep 60
}
fail() { mark "stage1-failed: $*"; halt; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mark init

job=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in rdsvm.job=*) job=${arg#rdsvm.job=} ;; esac
done
[ -n "$job" ] || fail "no rdsvm.job= on the kernel command line"

for m in $(cat /etc/stage1-modules); do
  insmod "/lib/modules/$m" || fail "insmod $m"
done

# The job directory first: it holds this stage's settings, wherever the host keeps it.
mkdir -p /job
mount -t virtiofs results /job || fail "mount the job directory (virtio-fs results)"
# Written by the harness with shell-quoted values: RDSVM_MODULES_DIR, RDSVM_LOAD, RDSVM_SHARES.
. /job/stage1.conf || fail "read $job/stage1.conf"

mount -t virtiofs -o ro hostroot /lower || fail "mount the host root (virtio-fs hostroot)"
mount -t tmpfs -o mode=0755 rw /rw || fail "tmpfs for the overlays"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
  fail "overlay on the host root"

N=/newroot
mount -t proc proc $N/proc
mount -t sysfs sysfs $N/sys
mount -t devtmpfs devtmpfs $N/dev
mkdir -p $N/dev/pts $N/dev/shm
mount -t devpts devpts $N/dev/pts
mount -t tmpfs tmpfs $N/dev/shm
mount -t tmpfs -o mode=1777 tmpfs $N/tmp
mount -t tmpfs -o mode=0755 tmpfs $N/run
# After /tmp and /run: a share may live below them. Each "tag=path", shortest path first.
for share in $RDSVM_SHARES; do
  tag=${share%%=*}
  path=${share#*=}
  mkdir -p "/x/$tag" "/rw/$tag/upper" "/rw/$tag/work" "$N$path"
  mount -t virtiofs -o ro "$tag" "/x/$tag" || fail "mount $path (virtio-fs $tag)"
  mount -t overlay -o "lowerdir=/x/$tag,upperdir=/rw/$tag/upper,workdir=/rw/$tag/work" overlay \
    "$N$path" || fail "overlay on $path"
done
release=$(uname -r)
mkdir -p "$N/lib/modules/$release"
mount --bind "$N$RDSVM_MODULES_DIR" "$N/lib/modules/$release" || fail "bind the module tree"
mkdir -p "$N$job"
mount --bind /job "$N$job" || fail "bind the job directory at $job"
ip link set lo up || fail "loopback up"

# QEMU's DMI product UUID is all zeros, so `nvme gen-hostnqn` would give every guest the same
# host NQN; give this guest its own.
mkdir -p $N/etc/nvme
echo "nqn.2014-08.org.nvmexpress:uuid:$(cat /proc/sys/kernel/random/uuid)" > $N/etc/nvme/hostnqn
cat /proc/sys/kernel/random/uuid > $N/etc/nvme/hostid

if [ -n "$RDSVM_LOAD" ]; then
  chroot $N /sbin/modprobe -a $RDSVM_LOAD || fail "modprobe $RDSVM_LOAD"
fi
# configfs (nvmet's control plane) exists once its module is loaded.
if [ -d $N/sys/kernel/config ]; then
  mount -t configfs configfs $N/sys/kernel/config || fail "mount configfs"
fi
mark ready

{
  chroot $N /bin/sh "$job/job.sh"
  echo $? > /job-status
} 2>&1 | tee "$N$job/output.log"
status=$(cat /job-status)
echo "$status" > "$N$job/.rdsvm-exit-status"
mark "job-exit status=$status"
sync
umount "$N$job"
umount /job
halt
