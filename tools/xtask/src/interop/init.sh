#!/bin/busybox sh
# /init of the Linux NVMe/TCP target guest (packed by tools/xtask/src/interop/image.rs).
#
# Configuration comes from the kernel command line, so one initramfs serves
# every configuration:
#   dpusim.ip=A.B.C.D dpusim.prefix=N dpusim.mac=xx:xx:xx:xx:xx:xx
#   dpusim.nqn=NQN dpusim.port=P dpusim.ramdisk_kib=K [dpusim.selftest=1]
#
# It sets up an nvmet-tcp target exporting a brd RAM disk (/dev/ram0) as
# namespace 1 of NQN on IP:P over the only NIC, prints exactly one line
#   DPUSIM-NVMET-READY <ip>:<port> <nqn>
# and idles forever. A setup failure prints `DPUSIM-NVMET-FAIL <reason>` and
# powers off.
#
# With dpusim.mode=initiator it is an NVMe/TCP *host* instead (no nvmet):
#   dpusim.target=A.B.C.D dpusim.port=P dpusim.nqn=SUBNQN
#   dpusim.hostnqn=HOSTNQN [dpusim.nqn2=SUBNQN2 dpusim.badhostnqn=NQN]
# It loads nvme-tcp, prints `DPUSIM-INITIATOR-READY <ip>`, reads the
# card's discovery log (nvme-cli `nvme discover`, TCP 8009): as hostnqn it
# must list SUBNQN and SUBNQN2 at the target's address and port, as
# badhostnqn SUBNQN only; then it connects to
# SUBNQN at the card (retrying while the card boots), writes patterns with
# dd (O_DIRECT, 4 KiB and 128 KiB blocks) to the namespace, reads them back
# and compares, discards 1 MiB (Dataset Management: must read back as
# zeroes); with nqn2, connecting to it as badhostnqn must fail and as
# hostnqn must work, with header and data digests (hdr_digest,data_digest),
# and is checked the same way; then it disconnects and
# prints `DPUSIM-INITIATOR-PASS` or `DPUSIM-INITIATOR-FAIL <reason>` and
# powers off.
#
# With dpusim.selftest=1 it then connects the guest's own kernel NVMe/TCP host
# to the target (plain, then with digests), writes patterns and reads them back, prints
# `DPUSIM-SELFTEST-PASS` or `DPUSIM-SELFTEST-FAIL <reason>` and powers off.

/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox mount -t proc proc /proc
# Symlinks for every applet (also /sbin/modprobe, which the kernel itself runs
# to load modules on demand).
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Our lines start on a fresh line (the firmware leaves escape codes behind).
echo

MARK=DPUSIM-NVMET
fail() {
    echo "$MARK-FAIL $*"
    poweroff -f
    sleep 10
    exit 1
}

# Waits up to $1 tenths of a second for the command "$2 ..." to succeed.
wait_for() {
    n=$1
    shift
    while ! "$@"; do
        n=$((n - 1))
        [ "$n" -gt 0 ] || return 1
        sleep 0.1
    done
}

# new_namespace: sets DEV to a /dev/nvme*n1 not seen before (the
# host side of both roles: initiator mode and the target's self-test).
SEEN=
new_namespace() {
    for d in /dev/nvme*n1; do
        [ -b "$d" ] || continue
        case " $SEEN " in *" $d "*) continue ;; esac
        DEV=$d
        SEEN="$SEEN $d"
        return 0
    done
    return 1
}

# ---------------------------------------------------------------- config
IP= PREFIX= MAC= NQN= PORT= RAMDISK_KIB= SELFTEST=0 MODE=target TARGET= HOSTNQN= NQN2= BADHOSTNQN=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    dpusim.ip=*) IP=${arg#*=} ;;
    dpusim.prefix=*) PREFIX=${arg#*=} ;;
    dpusim.mac=*) MAC=${arg#*=} ;;
    dpusim.nqn=*) NQN=${arg#*=} ;;
    dpusim.port=*) PORT=${arg#*=} ;;
    dpusim.ramdisk_kib=*) RAMDISK_KIB=${arg#*=} ;;
    dpusim.selftest=*) SELFTEST=${arg#*=} ;;
    dpusim.mode=*) MODE=${arg#*=} ;;
    dpusim.target=*) TARGET=${arg#*=} ;;
    dpusim.hostnqn=*) HOSTNQN=${arg#*=} ;;
    dpusim.nqn2=*) NQN2=${arg#*=} ;;
    dpusim.badhostnqn=*) BADHOSTNQN=${arg#*=} ;;
    esac
done
for v in IP PREFIX MAC NQN PORT RAMDISK_KIB; do
    eval "val=\$$v"
    [ -n "$val" ] || fail "kernel command line lacks dpusim.$(echo $v | tr A-Z a-z)="
done

# ---------------------------------------------------------------- modules
# Generated next to this script: EARLY_MODULES, NIC_MODULES, TARGET_MODULES,
# HOST_MODULES (modules built into the kernel are left out).
. /etc/dpusim/modules.sh
# The checksum providers go first: when a host asks for digests nvmet-tcp
# allocates "crc32c" from the crypto API, and if no provider is loaded yet the
# 6.1 kernel calls modprobe from a worker and can crash in
# nvmet_tcp_release_queue_work.
for m in $EARLY_MODULES $NIC_MODULES $TARGET_MODULES; do
    modprobe "$m" || fail "modprobe $m"
done
modprobe brd rd_nr=1 rd_size="$RAMDISK_KIB" max_part=0 || fail "modprobe brd"
wait_for 50 test -b /dev/ram0 || fail "/dev/ram0 did not appear"

# ---------------------------------------------------------------- network
nic() {
    for d in /sys/class/net/*; do
        [ "${d##*/}" = lo ] || { IFACE=${d##*/}; return 0; }
    done
    return 1
}
IFACE=
wait_for 100 nic || fail "no network interface besides lo"
# The simulated segment is IPv4 only: no IPv6 router/neighbour solicitations.
for c in all default "$IFACE"; do
    echo 1 > "/proc/sys/net/ipv6/conf/$c/disable_ipv6"
done
ip link set dev lo up || fail "lo up"
ip link set dev "$IFACE" address "$MAC" || fail "set MAC $MAC on $IFACE"
ip link set dev "$IFACE" up || fail "$IFACE up"
ip addr add "$IP/$PREFIX" dev "$IFACE" || fail "add $IP/$PREFIX to $IFACE"

# ---------------------------------------------------------------- initiator
if [ "$MODE" = initiator ]; then
    MARK=DPUSIM-INITIATOR
    [ -n "$TARGET" ] && [ -n "$HOSTNQN" ] || fail "initiator mode needs dpusim.target= and dpusim.hostnqn="
    case " $HOST_MODULES " in
    *" nvme_core "*) modprobe nvme_core multipath=N || fail "modprobe nvme_core" ;;
    esac
    for m in $HOST_MODULES; do
        modprobe "$m" || fail "modprobe $m"
    done
    wait_for 50 test -c /dev/nvme-fabrics || fail "/dev/nvme-fabrics did not appear"
    echo 7 > /proc/sys/kernel/printk
    echo "DPUSIM-INITIATOR-READY $IP"
    # discover HOSTNQN: the card's discovery log (nvme-cli, TCP 8009) as
    # HOSTNQN, retrying while the card boots, into /tmp/discovery.
    discover() {
        n=180
        while ! timeout 60 nvme discover -t tcp -a "$TARGET" -s 8009 -q "$1" > /tmp/discovery 2>&1; do
            n=$((n - 1))
            [ "$n" -gt 0 ] || fail "discovery at $TARGET:8009 as $1: $(tail -n 3 /tmp/discovery)"
            sleep 1
        done
        echo "$MARK discovery as $1: $(grep -c '^subnqn:' /tmp/discovery) entries"
        grep -E '^(Discovery Log|subtype|treq|portid|trsvcid|subnqn|traddr|sectype)' /tmp/discovery | sed "s/^/$MARK   /"
    }
    listed() {
        grep -q "^subnqn: *$1\$" /tmp/discovery
    }
    discover "$HOSTNQN"
    grep -q "^traddr: *$TARGET\$" /tmp/discovery && grep -q "^trsvcid: *$PORT\$" /tmp/discovery ||
        fail "discovery log lacks $TARGET:$PORT: $(cat /tmp/discovery)"
    for q in $NQN $NQN2; do
        listed "$q" || fail "discovery log as $HOSTNQN lacks $q: $(cat /tmp/discovery)"
    done
    if [ -n "$NQN2" ] && [ -n "$BADHOSTNQN" ]; then
        discover "$BADHOSTNQN"
        listed "$NQN" || fail "discovery log as $BADHOSTNQN lacks $NQN"
        ! listed "$NQN2" || fail "discovery log shows $NQN2 to $BADHOSTNQN, which is not on its allow-list"
        echo "$MARK discovery hides $NQN2 from $BADHOSTNQN"
    fi
    # attach SUBNQN HOSTNQN [,OPTIONS]: connects (retrying up to 180 s
    # while the card boots: a refused TCP connection fails at once), sets DEV.
    attach() {
        n=180
        while ! echo "transport=tcp,traddr=$TARGET,trsvcid=$PORT,nqn=$1,hostnqn=$2$3" > /dev/nvme-fabrics; do
            n=$((n - 1))
            [ "$n" -gt 0 ] || fail "connect to $TARGET:$PORT $1 as $2"
            sleep 1
        done
        echo "$MARK connected to $1 as $2$3"
        wait_for 300 new_namespace || fail "no new /dev/nvme*n1 after connecting to $1"
    }
    # check BS COUNT OFFSET_BLOCKS: O_DIRECT write of a random pattern, read back, compare.
    check() {
        dd if=/dev/urandom of=/tmp/pattern bs="$1" count="$2" 2>/dev/null || fail "make pattern"
        dd if=/tmp/pattern of="$DEV" bs="$1" count="$2" seek="$3" oflag=direct conv=notrunc 2>/dev/null ||
            fail "$DEV: write $2 x $1 B at block $3"
        dd if="$DEV" of=/tmp/readback bs="$1" count="$2" skip="$3" iflag=direct 2>/dev/null ||
            fail "$DEV: read $2 x $1 B at block $3"
        cmp -s /tmp/pattern /tmp/readback || fail "$DEV: read-back of $2 x $1 B at block $3 differs"
        echo "$MARK $DEV: $2 x $1 B at block $3: $(md5sum < /tmp/pattern | cut -c1-32) read back equal"
    }
    attach "$NQN" "$HOSTNQN"
    SIZE=$(cat "/sys/block/${DEV#/dev/}/size")
    echo "$MARK $DEV: $SIZE sectors"
    # Never written: reads as zeroes (a RAM namespace).
    dd if="$DEV" of=/tmp/zero bs=4096 count=16 skip=1000 iflag=direct 2>/dev/null || fail "$DEV: read unwritten blocks"
    [ "$(tr -d '\000' < /tmp/zero | wc -c)" = 0 ] || fail "$DEV: unwritten blocks do not read as zeroes"
    check 4096 256 0
    check 131072 32 8
    check 65536 16 200
    # Dataset Management (deallocate; ONCS says DSM): discarded blocks of
    # the RAM namespace read back as zeroes (its DLFEAT).
    blkdiscard -o $((8 * 131072)) -l 1048576 "$DEV" || fail "$DEV: blkdiscard (Dataset Management)"
    dd if="$DEV" of=/tmp/zero bs=131072 count=8 skip=8 iflag=direct 2>/dev/null || fail "$DEV: read discarded blocks"
    [ "$(tr -d '\000' < /tmp/zero | wc -c)" = 0 ] || fail "$DEV: discarded blocks do not read as zeroes"
    echo "$MARK $DEV: 1 MiB discarded (Dataset Management) reads back as zeroes"
    # A second host of the RAM subsystem gets a controller of its own
    # (Identify CMIC/NMIC: the subsystem holds several, the namespace is
    # shared) and reads what the first one wrote. It connects with SQ
    # flow control disabled (`nvme connect --disable-sqflow`: Connect
    # CATTR bit 2), so the card ends its reads with a SUCCESS C2HData.
    FIRST=$DEV
    attach "$NQN" "$HOSTNQN-2" ",hostid=0d9c2a5e-0000-4000-8000-000000000002,disable_sqflow"
    dd if="$FIRST" of=/tmp/a bs=65536 count=16 skip=200 iflag=direct 2>/dev/null || fail "$FIRST: read"
    dd if="$DEV" of=/tmp/b bs=65536 count=16 skip=200 iflag=direct 2>/dev/null || fail "$DEV: read"
    cmp -s /tmp/a /tmp/b || fail "$DEV: a second controller of $NQN reads other data than $FIRST"
    echo "$MARK $DEV: a second controller of $NQN reads the same 1 MiB as $FIRST"
    if [ -n "$NQN2" ]; then
        if [ -n "$BADHOSTNQN" ]; then
            if echo "transport=tcp,traddr=$TARGET,trsvcid=$PORT,nqn=$NQN2,hostnqn=$BADHOSTNQN" > /dev/nvme-fabrics 2>/dev/null; then
                fail "$NQN2 accepted $BADHOSTNQN, which is not on its allow-list"
            fi
            echo "$MARK $NQN2 refused $BADHOSTNQN (not on its allow-list)"
        fi
        # With header and data digests (CRC32C on every PDU); writes above
        # the card's 8 KiB in-capsule limit go by R2T/H2CData.
        attach "$NQN2" "$HOSTNQN" ",hdr_digest,data_digest"
        check 4096 64 0
        check 131072 8 16
        check 16384 32 200
    fi
    for c in /sys/class/nvme/nvme*; do
        echo 1 > "$c/delete_controller" || fail "disconnect ${c##*/}"
    done
    echo "DPUSIM-INITIATOR-PASS"
    poweroff -f
    sleep 10
fi

# ---------------------------------------------------------------- nvmet
mount -t configfs configfs /sys/kernel/config || fail "mount configfs"
N=/sys/kernel/config/nvmet
S=$N/subsystems/$NQN
P=$N/ports/1
mkdir "$S" || fail "create subsystem $NQN"
echo 1 > "$S/attr_allow_any_host" || fail "attr_allow_any_host"
mkdir "$S/namespaces/1" || fail "create namespace 1"
echo -n /dev/ram0 > "$S/namespaces/1/device_path" || fail "namespace device_path"
echo 1 > "$S/namespaces/1/enable" || fail "enable namespace 1"
mkdir "$P" || fail "create port 1"
echo tcp > "$P/addr_trtype" || fail "addr_trtype"
echo ipv4 > "$P/addr_adrfam" || fail "addr_adrfam"
echo "$IP" > "$P/addr_traddr" || fail "addr_traddr"
echo "$PORT" > "$P/addr_trsvcid" || fail "addr_trsvcid"
# Linking the subsystem into the port starts the TCP listener.
ln -s "$S" "$P/subsystems/$NQN" || fail "link subsystem into port 1"
listening() {
    grep -q ":$(printf %04X "$PORT") 00000000:0000 0A" /proc/net/tcp
}
wait_for 50 listening || fail "nothing listens on TCP port $PORT"

# Boot was quiet; from now on the console shows the kernel's info messages
# too, e.g. nvmet creating and tearing down controllers for each host.
echo 7 > /proc/sys/kernel/printk
echo "DPUSIM-NVMET-READY $IP:$PORT $NQN"

if [ "$SELFTEST" != 1 ]; then
    while true; do
        sleep 3600
    done
fi

# ---------------------------------------------------------------- self-test
# The guest's own NVMe/TCP host connects to the target (through the local
# route, so nothing leaves the NIC) twice: once plain, once with header and
# data digests (CRC32C both ways). Native multipath is off so that each
# controller gets its own block device. Data is written through each and
# checked both through the host and directly on the target's RAM disk.
MARK=DPUSIM-SELFTEST
case " $HOST_MODULES " in
*" nvme_core "*) modprobe nvme_core multipath=N || fail "modprobe nvme_core" ;;
esac
for m in $HOST_MODULES; do
    modprobe "$m" || fail "modprobe $m"
done
wait_for 50 test -c /dev/nvme-fabrics || fail "/dev/nvme-fabrics did not appear"

# connect EXTRA_OPTIONS WHAT: connects a controller, sets DEV to its namespace.
connect() {
    echo "transport=tcp,traddr=$IP,trsvcid=$PORT,nqn=$NQN$1" > /dev/nvme-fabrics ||
        fail "connect to $IP:$PORT $NQN ($2)"
    wait_for 300 new_namespace || fail "no new /dev/nvme*n1 after connecting ($2)"
    SIZE=$(cat "/sys/block/${DEV#/dev/}/size")
    [ "$SIZE" = $((RAMDISK_KIB * 2)) ] || fail "$DEV has $SIZE sectors, expected $((RAMDISK_KIB * 2))"
}

# check BS COUNT OFFSET_BLOCKS: writes COUNT blocks of BS bytes at block
# OFFSET_BLOCKS of $DEV with O_DIRECT and verifies them. 4 KiB writes fit the
# target's in-capsule data size; 128 KiB writes go through R2T/H2CData.
check() {
    dd if=/dev/urandom of=/tmp/pattern bs="$1" count="$2" 2>/dev/null || fail "make pattern"
    dd if=/tmp/pattern of="$DEV" bs="$1" count="$2" seek="$3" oflag=direct conv=notrunc,fsync 2>/dev/null ||
        fail "$DEV: write $2 x $1 B at block $3"
    dd if="$DEV" of=/tmp/readback bs="$1" count="$2" skip="$3" iflag=direct 2>/dev/null ||
        fail "$DEV: read $2 x $1 B at block $3"
    cmp -s /tmp/pattern /tmp/readback || fail "$DEV: read-back of $2 x $1 B at block $3 differs"
    dd if=/dev/ram0 of=/tmp/backing bs="$1" count="$2" skip="$3" iflag=direct 2>/dev/null ||
        fail "read /dev/ram0"
    cmp -s /tmp/pattern /tmp/backing || fail "/dev/ram0 does not hold what $DEV wrote ($2 x $1 B at block $3)"
}

connect "" "no digests"
check 4096 64 0
check 131072 8 8
connect ",hdr_digest,data_digest,duplicate_connect" "header and data digests"
check 4096 64 1024
check 131072 8 40
echo "DPUSIM-SELFTEST-PASS"
poweroff -f
sleep 10
