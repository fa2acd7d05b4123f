#!/usr/bin/env python3
"""Writes a VHDX image as the vhdx fuzz target's input (vhdx_fuzz.cpp):
records of {u32 file offset, u16 length, bytes} for the runs of non-zero
bytes, and an empty record at the end of the file that gives it its size.

    tests/fuzz/vhdx_seed.py IMAGE OUTPUT
"""
import struct
import sys


def records(image):
    out = bytearray()
    i, n = 0, len(image)
    while i < n:
        if image[i] == 0:
            i += 1
            continue
        start = i
        zeros = 0
        # A run ends after 16 zero bytes or at 65535 bytes.
        while i < n and i - start < 65535 and zeros < 16:
            zeros = zeros + 1 if image[i] == 0 else 0
            i += 1
        run = image[start:i].rstrip(b"\0")
        out += struct.pack("<IH", start, len(run)) + run
    out += struct.pack("<IH", n - 1, 1) + b"\0"
    return bytes(out)


def main():
    with open(sys.argv[1], "rb") as f:
        image = f.read()
    with open(sys.argv[2], "wb") as f:
        f.write(records(image))


if __name__ == "__main__":
    main()
