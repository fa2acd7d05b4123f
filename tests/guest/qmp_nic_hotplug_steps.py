"""The QMP side of linux_netvsc_hotplug_test.sh, one step per run:

    qmp_nic_hotplug_steps.py TEST_DIR SOCKET STEP

add-1: netdev_add a user-mode network and device_add a netvsc adapter on
it (QEMU's default MAC for the first adapter), after the requests QEMU 7.2
refuses (each text as QEMU gives it for the same request with its e1000);
remove-1: device_del it (DEVICE_DELETED) and netdev_del its network;
add-2: a second network and adapter with a MAC of its own. Exits non-zero
with a message on the first surprise."""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[1])
from qmp_client import Qmp  # noqa: E402

socket_path, step = sys.argv[2], sys.argv[3]
qmp = Qmp(socket_path)
events = qmp.events
ok = qmp.ok
refused = qmp.refused

if step == 'add-1':
    refused("Parameter 'type' does not accept value 'bogus'", 'netdev_add', type='bogus', id='n9')
    refused("Parameter 'id' is missing", 'netdev_add', type='user')
    refused("Parameter 'id' expects an identifier", 'netdev_add', type='user', id='9x')
    refused("Invalid host forwarding rule 'garbage'", 'netdev_add', type='user', id='n9',
            hostfwd=[{'str': 'garbage'}])
    ok('netdev_add', type='user', id='n1')
    refused("Duplicate ID 'n1'", 'netdev_add', type='user', id='n1')
    refused("Property 'netvsc.netdev' can't find value 'zz'", 'device_add', driver='netvsc', netdev='zz', id='nic9')
    refused("Property 'netvsc.mac' doesn't take value 'zz'", 'device_add', driver='netvsc', netdev='n1',
            id='nic9', mac='zz')
    refused("Property 'netvsc.bogus' not found", 'device_add', driver='netvsc', netdev='n1', bogus='1')
    ok('device_add', driver='netvsc', netdev='n1', id='nic1')
    refused("Property 'netvsc.netdev' can't take value 'n1', it's in use", 'device_add', driver='netvsc',
            netdev='n1', id='nic2')
    refused("Duplicate device ID 'nic1'", 'device_add', driver='netvsc', netdev='n1', id='nic1')
elif step == 'remove-1':
    if refused("Device 'nic9' not found", 'device_del', id='nic9') != 'DeviceNotFound':
        sys.exit('device_del of an unknown id is not DeviceNotFound')
    ok('device_del', id='nic1')
    qmp.execute('query-status')  # an event sent before this reply is read by now
    deleted = [e for e in events if e['event'] == 'DEVICE_DELETED']
    if len(deleted) != 1 or deleted[0]['data'] != {'device': 'nic1', 'path': '/machine/peripheral/nic1'}:
        sys.exit('no DEVICE_DELETED for nic1: %s' % events)
    ok('netdev_del', id='n1')
    if refused("Device 'n1' not found", 'netdev_del', id='n1') != 'DeviceNotFound':
        sys.exit('netdev_del of an unknown id is not DeviceNotFound')
elif step == 'add-2':
    ok('netdev_add', type='user', id='n2')
    ok('device_add', driver='netvsc', netdev='n2', id='nic2', mac='52:54:00:ab:cd:ef')
    refused("Netdev 'n2' is in use by device 'nic2': device_del it first", 'netdev_del', id='n2')
else:
    sys.exit('unknown step ' + step)
