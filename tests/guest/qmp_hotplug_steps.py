"""The QMP side of linux_scsi_hotplug_test.sh, one step per run:

    qmp_hotplug_steps.py TEST_DIR SOCKET WORK STEP

add-a: blockdev-add a raw node and device_add it at LUN 2, after the
requests QEMU 7.2 refuses (each text as QEMU gives it for the same
request on a pc machine with a SCSI controller); remove-a: device_del it
(DEVICE_DELETED) and blockdev-del its node; add-b: a VHDX node added at
the first free LUN. Exits non-zero with a message on the first surprise."""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[1])
from qmp_client import Qmp  # noqa: E402

socket_path, work, step = sys.argv[2], sys.argv[3], sys.argv[4]
qmp = Qmp(socket_path)
events = qmp.events
ok = qmp.ok
refused = qmp.refused


def file_node(name, path, driver='raw'):
    return {'driver': driver, 'node-name': name, 'file': {'driver': 'file', 'filename': path}}


def hot_disk(qdev):
    """query-block's entry for the device `qdev`, or None."""
    for entry in qmp.execute('query-block')['return']:
        if entry.get('qdev') == qdev:
            return entry
    return None


if step == 'add-a':
    ok('blockdev-add', **file_node('a', work + '/a.img'))
    refused("Duplicate nodes with node-name='a'", 'blockdev-add', **file_node('a', work + '/a.img'))
    refused("'node-name' must be specified for the root node", 'blockdev-add',
            driver='raw', file={'driver': 'file', 'filename': work + '/a.img'})
    refused("Could not open '%s/missing.img': No such file or directory" % work, 'blockdev-add',
            **file_node('m', work + '/missing.img'))
    refused("Parameter 'driver' does not accept value 'bogus'", 'blockdev-add',
            **file_node('x', work + '/a.img', driver='bogus'))
    refused("'scsi-hdx' is not a valid device model name", 'device_add', driver='scsi-hdx', drive='a')
    refused("Property 'scsi-hd.drive' can't find value 'nope'", 'device_add', driver='scsi-hd', drive='nope')
    refused("drive property not set", 'device_add', driver='scsi-hd', id='x7', lun=2)
    refused("Property 'scsi-hd.bogus' not found", 'device_add', driver='scsi-hd', drive='a', bogus=1)
    refused("Parameter 'lun' expects integer", 'device_add', driver='scsi-hd', drive='a', lun='x')
    refused("Parameter 'id' expects an identifier", 'device_add', driver='scsi-hd', id='9bad', drive='a')
    refused("bad scsi device lun: 16384", 'device_add', driver='scsi-hd', drive='a', lun=16384)
    refused("Bus 'scsi9.0' not found", 'device_add', driver='scsi-hd', drive='a', bus='scsi9.0')
    ok('device_add', driver='scsi-hd', id='disk-a', drive='a', lun=2)
    refused("Duplicate device ID 'disk-a'", 'device_add', driver='scsi-hd', id='disk-a', drive='a', lun=3)
    refused("Node a is in use", 'blockdev-del', **{'node-name': 'a'})
    entry = hot_disk('disk-a')
    if not entry or entry['device'] != '' or entry['removable'] or \
            entry['inserted']['node-name'] != 'a' or entry['inserted']['file'] != work + '/a.img' or \
            entry['inserted']['drv'] != 'raw' or entry['inserted']['image']['virtual-size'] != 16 << 20:
        sys.exit('query-block does not show disk-a as QEMU does: %s' % entry)
elif step == 'remove-a':
    if refused("Device 'nodisk' not found", 'device_del', id='nodisk') != 'DeviceNotFound':
        sys.exit('device_del of an unknown id is not DeviceNotFound')
    ok('device_del', id='disk-a')
    qmp.execute('query-status')  # an event sent before this reply is read by now
    deleted = [e for e in events if e['event'] == 'DEVICE_DELETED']
    if len(deleted) != 1 or deleted[0]['data'] != {'device': 'disk-a', 'path': '/machine/peripheral/disk-a'}:
        sys.exit('no DEVICE_DELETED for disk-a: %s' % events)
    if hot_disk('disk-a'):
        sys.exit('query-block still shows disk-a')
    ok('blockdev-del', **{'node-name': 'a'})
    refused("Failed to find node with node-name='a'", 'blockdev-del', **{'node-name': 'a'})
elif step == 'add-b':
    ok('blockdev-add', **file_node('b', work + '/b.vhdx', driver='vhdx'))
    ok('device_add', driver='scsi-hd', id='disk-b', drive='b')  # the first free LUN: 0
    entry = hot_disk('disk-b')
    if not entry or entry['inserted']['drv'] != 'vhdx':
        sys.exit('query-block does not show disk-b: %s' % entry)
else:
    sys.exit('unknown step ' + step)
