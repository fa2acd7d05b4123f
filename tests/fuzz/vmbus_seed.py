#!/usr/bin/env python3
"""Writes the seeds of the VMBus fuzz target (vmbus_fuzz.cpp) into
corpus/vmbus: message sequences as Linux 6.1's hv_vmbus sends them (contact
at 5.3 or capped at 4.1, offers, a ring GPADL over a header and bodies, open,
signals both ways, MODIFYCHANNEL, close, teardown, UNLOAD), and the host's
side around them (save/load, hot-added channels, a device refusing, the
SynIC switched off, a kexec'd kernel making contact again). Usage:
vmbus_seed.py [DIR] (default: corpus/vmbus beside this script)."""
import struct

from seed_corpus import write_seeds

# Message types and sizes (paravirt/vmbus/vmbus_protocol.h).
OFFER_CHANNEL, REQUEST_OFFERS, OPEN_CHANNEL, CLOSE_CHANNEL = 1, 3, 5, 7
GPADL_HEADER, GPADL_BODY, GPADL_TEARDOWN = 8, 9, 11
INITIATE_CONTACT, UNLOAD, MODIFY_CHANNEL = 14, 16, 22
SINT = 2


def version(major, minor):
    return major << 16 | minor


# ---- the target's records ----

def post(message, vp=0, connection=1):
    assert len(message) <= 240
    return bytes([(1 if connection == 4 else 0) | vp << 4, len(message)]) + message


def burst(times):
    return bytes([2, times - 1])


def signal(relid, vp=0, flag=0):
    return bytes([3 | vp << 4, relid | flag << 3])


def read(vp=0, sint=SINT, how=0):
    """The guest takes the message in its slot: clears it and writes EOM."""
    return bytes([4 | vp << 4 | how << 5, sint])


def reads(n, vp=0):
    return read(vp) * n


def msr(which, value, vp=0):
    """which: 0 SIMP, 1 SIEFP, 2 SCONTROL, 3 SINT2; value: the target's bits."""
    return bytes([5 | vp << 4, which, value])


def save_load():
    return bytes([6])


def host_signal(relid):
    return bytes([7, relid])


def add_channel():
    return bytes([8])


def eoi(vp=0):
    return bytes([9 | vp << 4])


def accept(device, yes):
    return bytes([10, device | (8 if yes else 0)])


def reset(set_up_synic=True):
    return bytes([11 | (0x20 if set_up_synic else 0)])


def sub_channels(primary, count):
    return bytes([12, primary | count << 3])


RELID_RELEASED = 13


# ---- guest messages, laid out as Linux builds them ----

def remove_device(relid):
    return bytes([13, relid - 1])


def header(kind, size):
    return struct.pack('<II', kind, 0).ljust(size, b'\0')


def contact(ver, target_vcpu=0, connection=None):
    """INITIATE_CONTACT: from 5.0 on connection 4 with msg_sint, before on
    connection 1 with the interrupt page; monitor pages as Linux allocates."""
    modern = ver >= version(5, 0)
    if connection is None:
        connection = 4 if modern else 1
    body = struct.pack('<II', ver, target_vcpu)
    body += struct.pack('<BBHI', SINT, 0, 0, 0) if modern else struct.pack('<Q', 0x7F000)
    body += struct.pack('<QQ', 0x7E000, 0x7D000)
    return post(struct.pack('<II', INITIATE_CONTACT, 0) + body, connection=connection)


def request_offers():
    return post(header(REQUEST_OFFERS, 8))


def gpadl_posts(relid, handle, pages, first_pfn=0x1000):
    """A one-range GPADL as vmbus_establish_gpadl sends it: a header with up
    to 26 PFNs, then bodies of up to 28 (one record each)."""
    pfns = [first_pfn + i for i in range(pages)]
    in_header = pfns[:26]
    out = [post(struct.pack('<IIIIHH', GPADL_HEADER, 0, relid, handle, 8 + 8 * pages, 1) +
               struct.pack('<II', pages * 4096, 0) + b''.join(struct.pack('<Q', p) for p in in_header))]
    rest = pfns[26:]
    number = 0
    while rest:
        chunk, rest = rest[:28], rest[28:]
        number += 1
        out.append(post(struct.pack('<IIII', GPADL_BODY, 0, number, handle) +
                        b''.join(struct.pack('<Q', p) for p in chunk)))
    return out


def gpadl(relid, handle, pages, first_pfn=0x1000):
    return b''.join(gpadl_posts(relid, handle, pages, first_pfn))


def open_channel(relid, handle, target_vp, downstream, open_id=None):
    m = struct.pack('<IIIIIII', OPEN_CHANNEL, 0, relid, relid if open_id is None else open_id, handle,
                    target_vp, downstream)
    return post(m.ljust(148, b'\0'))


def close_channel(relid):
    return post(struct.pack('<III', CLOSE_CHANNEL, 0, relid))


def teardown(relid, handle):
    return post(struct.pack('<IIII', GPADL_TEARDOWN, 0, relid, handle))


def modify(relid, target_vp):
    return post(struct.pack('<IIII', MODIFY_CHANNEL, 0, relid, target_vp))


def relid_released(relid):
    return post(struct.pack('<III', RELID_RELEASED, 0, relid))


def unload():
    return post(header(UNLOAD, 8))


def linux_start(ver=version(5, 3), channels=3):
    """Contact, the version answer, offers and ALL_OFFERS_DELIVERED read."""
    return contact(ver) + read() + request_offers() + reads(channels + 1)


# A storvsc-sized ring: 64 pages, the first 32 the guest-to-host ring.
RING = 0xE1E10

SEEDS = {
    'linux-5.3-open-close-unload':
        linux_start() + gpadl(1, RING, 64) + read() + open_channel(1, RING, 1, 32) + read() +
        signal(1) + host_signal(1) + signal(1, vp=1) + modify(1, 0) + read() + host_signal(1) +
        close_channel(1) + teardown(1, RING) + read() + unload() + read(),
    'linux-4.1-capped':
        linux_start(version(4, 1)) + gpadl(2, 0x100, 8) + read() + open_channel(2, 0x100, 0, 4) +
        read() + signal(2) + modify(2, 1) + close_channel(2) + teardown(2, 0x100) + read() + unload() +
        read(),
    'version-fallback':
        contact(version(6, 0)) + read() + contact(version(5, 3), connection=1) + read() + contact(version(5, 2), 1) + read(1) + request_offers() + reads(4, vp=1),
    'offers-past-the-queue':
        add_channel() * 3 + contact(version(5, 3)) + request_offers() + burst(40) + reads(30) + eoi() +
        reads(30) + save_load() + reads(200),
    'device-refuses':
        linux_start() + gpadl(3, 7, 4) + read() + open_channel(3, 7, 0, 2) + read() + accept(2, True) +
        open_channel(3, 7, 0, 2) + read() + teardown(3, 7) + close_channel(3) + teardown(3, 7) + read(),
    'save-load-mid-gpadl-and-open':
        linux_start() + b''.join(gpadl_posts(1, 9, 100)[:2]) + save_load() +
        b''.join(gpadl_posts(1, 9, 100)[2:]) + read() +
        open_channel(1, 9, 0, 50) + read() + save_load() + signal(1) + host_signal(1) + close_channel(1) +
        save_load() + teardown(1, 9) + read(),
    'kexec-contact-again':
        linux_start() + gpadl(1, 1, 16) + gpadl(2, 2, 16) + reads(2) + open_channel(1, 1, 0, 8) +
        open_channel(2, 2, 1, 8) + reads(2) + contact(version(5, 3)) + read() + request_offers() +
        reads(4) + reset() + linux_start(version(5, 0)),
    # storvsc's multi-channel: two sub-channels (relids 4 and 5) offered,
    # one opened on VP 1 and signalled both ways, saved and loaded; the
    # primary's close rescinds both, the guest releases them, asks again.
    'sub-channels-rescind-release':
        linux_start() + gpadl(1, RING, 64) + read() + open_channel(1, RING, 0, 32) + read() +
        sub_channels(1, 2) + reads(2) + gpadl(5, 0x200, 8) + read() + open_channel(5, 0x200, 1, 4) +
        read() + signal(5, vp=1) + host_signal(5) + save_load() + signal(5, vp=1) + close_channel(5) +
        close_channel(1) + reads(2) + relid_released(4) + relid_released(5) + gpadl(1, 0x300, 8) +
        read() + open_channel(1, 0x300, 0, 4) + read() + sub_channels(1, 1) + read() + unload() + read(),
    # A device removed at run time (a hot-unplugged adapter): its open
    # sub-channel and then the channel rescinded, saved and loaded while
    # the guest has not released them, the guest's late close, the
    # releases, and a GPADL for the gone relid refused.
    'device-removed':
        linux_start() + gpadl(2, RING, 64) + read() + open_channel(2, RING, 0, 32) + read() +
        sub_channels(2, 2) + reads(2) + gpadl(5, 0x200, 8) + read() + open_channel(5, 0x200, 1, 4) +
        read() + remove_device(2) + reads(3) + save_load() + signal(2) + close_channel(5) +
        close_channel(2) + relid_released(4) + relid_released(5) + relid_released(2) +
        gpadl(2, 0x300, 4) + read() + remove_device(2) + remove_device(1) + read() + unload() + read(),
    'synic-off-and-moved':
        linux_start() + gpadl(1, 4, 4) + msr(2, 0) + read() + msr(2, 1) + read() + msr(0, 0x41) +
        open_channel(1, 4, 0, 2) + read() + msr(3, 1) + host_signal(1) + msr(3, 0) + msr(1, 0x80) +
        host_signal(1) + unload() + read(how=2) + read(how=1) + read(),
}


def main():
    write_seeds(SEEDS, 'vmbus')


if __name__ == '__main__':
    main()
