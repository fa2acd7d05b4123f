"""What the seed generators share: writing each named seed of a fuzz target
into its corpus folder (argv[1], or corpus/NAME beside this script)."""
import os
import sys


def write_seeds(seeds, corpus):
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus', corpus)
    os.makedirs(out, exist_ok=True)
    for name, program in seeds.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(program)
