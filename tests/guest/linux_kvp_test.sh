#!/usr/bin/env bash
# Key-value pair exchange end to end (docs/vmbus.md "Integration
# services", docs/qmp.md): the Debian kernel's hv_utils with Debian's own
# hv_kvp_daemon (hyperv-daemons, in the default guest). The guest writes an
# item into its Guest pool file before the daemon starts; the host reads
# the Auto pool (the daemon's OSName, ProcessorArchitecture, ...) and the
# Guest pool over QMP (x-query-kvp), sets an item in its own pool
# (x-kvp-set), which the daemon writes to /var/lib/hyperv/.kvp_pool_0 for
# the guest to read, and deletes it again (x-kvp-delete).
#
#   linux_kvp_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built, or was built
# before it carried the daemon.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-kvp "$guest"
require_in_guest usr/sbin/hv_kvp_daemon

# A record of the daemon's pool files: the key in 512 bytes, the value in 2048.
record="{ printf GuestKey | dd bs=512 conv=sync; printf guest-value | dd bs=2048 conv=sync; } 2>/dev/null"
pool=/var/lib/hyperv/.kvp_pool_0
run="modprobe hv_utils; mkdir -p /var/lib/hyperv; $record >/var/lib/hyperv/.kvp_pool_1;"
run+=" hv_kvp_daemon -n & sleep 1; echo kvp-ready;"
run+=" i=0; while ! grep -q HostKey $pool 2>/dev/null && [ \$i -lt 600 ]; do sleep 0.2; i=\$((i+1)); done;"
run+=" echo host-pool: \$(strings $pool | tr '\\\\n' ' ');"
run+=" i=0; while grep -q HostKey $pool && [ \$i -lt 600 ]; do sleep 0.2; i=\$((i+1)); done;"
run+=" echo kvp-deleted: \$(strings $pool | wc -l); dmesg | grep -i kvp"
start_guest_with_qmp 300 hv_vmbus "$run"
wait_for "^kvp-ready"
python3 - "$(dirname "$0")" "$socket" "$work/out" >"$work/qmp" 2>&1 <<'PY' || { cat "$work/out" "$work/qmp"; fail "QMP failed"; }
import sys, time
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[1])
from qmp_client import Qmp
qmp = Qmp(sys.argv[2])

def error(reply):
    return reply.get('error', {}).get('desc')

# The guest's pools, read until the daemon's items and the guest's own are in.
deadline = time.time() + 120
while True:
    pools = qmp.execute('x-query-kvp')['return']
    if pools['auto'].get('OSName') and pools['guest'].get('GuestKey'):
        break
    if time.time() > deadline:
        sys.exit('the guest pools never filled: %s' % pools)
    time.sleep(0.5)
auto = pools['auto']
if pools['state'] != 'ready' or auto['OSName'] != 'viridian guest' or auto.get('ProcessorArchitecture') != 'x86_64':
    sys.exit('the Auto pool is not the daemon\'s: %s' % pools)
if 'IntegrationServicesVersion' not in auto or 'FullyQualifiedDomainName' not in auto:
    sys.exit('the Auto pool lacks the daemon\'s items: %s' % auto)
if pools['guest'] != {'GuestKey': 'guest-value'}:
    sys.exit('the Guest pool is not what the guest wrote: %s' % pools['guest'])
if qmp.execute('x-kvp-set', key='HostKey', value='host-value') != {'return': {}}:
    sys.exit('x-kvp-set failed')
if qmp.execute('x-query-kvp', refresh=False)['return']['host'] != {'HostKey': 'host-value'}:
    sys.exit('the host pool does not show the item')
if error(qmp.execute('x-kvp-set', key='k' * 256, value='v')) != \
        'A key takes 1 to 255 UTF-16 characters, a value up to 1023':
    sys.exit('a key too long was not refused')
if error(qmp.execute('x-kvp-delete', key='nothing')) != "Key 'nothing' is not in the host's pool":
    sys.exit('deleting a key never set was not refused')
# The guest reads the item, then the host deletes it.
def printed(prefix):
    with open(sys.argv[3], errors='replace') as out:
        return any(line.startswith(prefix) for line in out)
deadline = time.time() + 120
while not printed('host-pool:'):
    if time.time() > deadline:
        sys.exit('the guest did not see the host item')
    time.sleep(0.5)
if qmp.execute('x-kvp-delete', key='HostKey') != {'return': {}}:
    sys.exit('x-kvp-delete failed')
PY
finish_guest_with_qmp
has "viridian-guest: exit status 0" || fail "the guest's command failed"
has "^host-pool: HostKey host-value" || fail "the daemon did not write the host's item to its pool file"
has "^kvp-deleted: 0" || fail "the host's delete did not reach the daemon's pool file"
fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}" "hv_utils.*(invalid|error|fail|too small)" \
    "vmbus.*(error|fail|timed out|warn)" "KVP.*(fail|error)"
echo "linux-kvp: ok"
