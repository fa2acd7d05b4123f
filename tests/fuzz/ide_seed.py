#!/usr/bin/env python3
"""Writes the seeds of the IDE fuzz target (ide_fuzz.cpp) into corpus/ide:
small guest programs that reach each path (ATA PIO and DMA, ATAPI PACKET
commands by PIO and DMA, media changes, resets, save/load). Usage:
ide_seed.py [DIR] (default: corpus/ide beside this script)."""
import struct

from seed_corpus import write_seeds

CH1 = 0x80  # the op's bit 7 picks the secondary channel


def reg_write(offset, value, size=1, channel=0):
    sizes = {1: 0, 2: 1, 4: 2}
    return bytes([0 | channel, offset | sizes[size] << 3]) + struct.pack('<I', value)


def reg_read(offset, size=1, channel=0):
    sizes = {1: 0, 2: 1, 4: 2}
    return bytes([1 | channel, offset | sizes[size] << 3])


def bm_write(offset, value, size):
    sizes = {1: 0, 2: 1, 4: 2}
    return bytes([4, offset | sizes[size] << 4]) + struct.pack('<I', value)


def ram(address, data8):
    return bytes([6]) + address.to_bytes(3, 'little') + data8.ljust(8, b'\0')[:8]


def prd(table, address, count, channel_base=0):
    entry = struct.pack('<IHH', address, count, 0x8000)
    return ram(table, entry) + bm_write(channel_base + 4, table, 4)


def deliver():
    return bytes([7])


def packet(cdb, device=0xB0, features=0, limit=0xFFFE, channel=0):
    return bytes([8 | channel, device, features]) + struct.pack('<H', limit) + bytes(cdb).ljust(12, b'\0')


def task_file(feature, count, lba_low, lba_mid, lba_high, device, command, channel=0):
    return bytes([9 | channel, feature, count, lba_low, lba_mid, lba_high, device, command])


def data_port(words, write=False, channel=0):
    return bytes([10 | channel, 1 if write else 0]) + struct.pack('<H', words - 1)


def start_bm(to_memory=True):
    return bm_write(0, 0x09 if to_memory else 0x01, 1)


SEEDS = {
    'ata-identify': task_file(0, 0, 0, 0, 0, 0xA0, 0xEC) + data_port(256) + reg_read(7),
    'ata-read-dma': prd(0x1000, 0x2000, 1024) + task_file(0, 2, 0, 0, 0, 0xE0, 0xC8) +
                    start_bm() + deliver() + reg_read(7),
    'ata-write-pio': task_file(0, 2, 4, 0, 0, 0xE0, 0x30) + data_port(256, True) + deliver() +
                     data_port(256, True) + deliver() + reg_read(7),
    'atapi-identify': reg_write(6, 0xB0) + task_file(0, 0, 0, 0, 0, 0xB0, 0xA1) + data_port(256),
    'atapi-inquiry': packet([0x12, 0, 0, 0, 36]) + data_port(18) + reg_read(7) +
                     packet([0x03, 0, 0, 0, 18]) + data_port(9),
    'atapi-read10-dma': prd(0x3000, 0x4000, 4096) + start_bm() +
                        packet([0x28, 0, 0, 0, 0, 1, 0, 0, 2], features=1, limit=0) + deliver() +
                        reg_read(7),
    'atapi-read12-pio': packet([0xA8, 0, 0, 0, 0, 0, 0, 0, 0, 20], limit=0x800) +
                        (deliver() + data_port(1024)) * 20 + reg_read(7),
    'atapi-toc-config': packet([0x43, 2, 0, 0, 0, 0, 0, 0, 100]) + data_port(10) +
                        packet([0x46, 0, 0, 0, 0, 0, 0, 1, 0]) + data_port(30) +
                        packet([0x5A, 0, 0x3F, 0, 0, 0, 0, 0, 255]) + data_port(40),
    'atapi-media-change': bytes([11, 4]) + packet([0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8]) +
                          data_port(4) + packet([0x00]) + packet([0x03, 0, 0, 0, 18]) +
                          data_port(9) + packet([0x1B, 0, 0, 0, 2]) + bytes([13]) +
                          packet([0x25]) + bytes([11, 1]) + packet([0x00]),
    'atapi-empty-drive': packet([0x00], device=0xA0, channel=CH1) +
                         bytes([11, 2]) + packet([0x25], device=0xA0, channel=CH1) +
                         data_port(4, channel=CH1),
    'reset-mid-command': packet([0x28, 0, 0, 0, 0, 0, 0, 0, 8], limit=0x800) + bytes([2, 0x04]) +
                         bytes([2, 0x00]) + deliver() + packet([0x12]) + bytes([12]) +
                         reg_write(7, 0x08),
}


def main():
    write_seeds(SEEDS, 'ide')


if __name__ == '__main__':
    main()
