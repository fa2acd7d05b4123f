#!/usr/bin/env python3
"""Fails when a project header is included across folders along an edge that
tests/layering/allowed_includes.txt does not list (docs/architecture.md
"Layers"). Usage: check_includes.py SOURCE_ROOT"""
import pathlib
import re
import sys

LAYERED = ('mmu', 'cpu', 'platform', 'paravirt', 'accel', 'frontend')
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def allowed_edges(path):
    """The edges, and the pairs declared with `A <-> B` (two halves of one
    part that call each other), which are the only cycles allowed."""
    edges, pairs = set(), set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        arrow = '<->' if '<->' in line else '->'
        parts = [p.strip() for p in line.split(arrow)]
        if len(parts) != 2 or not all(parts):
            sys.exit(f'{path}:{number}: expected "FROM -> TO" or "A <-> B", got {line!r}')
        edges.add(tuple(parts))
        if arrow == '<->':
            edges.add((parts[1], parts[0]))
            pairs.add(frozenset(parts))
    return edges, pairs


def cycles(edges, pairs):
    """Edges of the allowed graph that close a cycle other than a declared
    pair: the list itself must describe layers."""
    graph = {}
    for a, b in edges:
        if frozenset((a, b)) not in pairs:
            graph.setdefault(a, set()).add(b)
    found, state = [], {}

    def visit(node, path):
        state[node] = 'open'
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                found.append(' -> '.join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 'done'

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    edges, pairs = allowed_edges(root / 'tests/layering/allowed_includes.txt')
    problems = [f'allowed_includes.txt allows a cycle: {cycle}' for cycle in cycles(edges, pairs)]
    files = 0
    for top in LAYERED:
        for source in sorted((root / top).rglob('*')):
            if source.suffix not in ('.h', '.cpp'):
                continue
            files += 1
            relative = source.relative_to(root)
            here = relative.parent.as_posix()
            for included in INCLUDE.findall(source.read_text(errors='replace')):
                target = (root / included)
                if not target.exists():
                    problems.append(f'{relative}: includes "{included}", which is not a file '
                                    'of the project (project headers are named from the top)')
                    continue
                there = pathlib.PurePosixPath(included).parent.as_posix()
                if there == here:
                    continue
                if (here, there) in edges:
                    continue
                problems.append(f'{relative}: includes "{included}" ({here} -> {there}), '
                                'an edge tests/layering/allowed_includes.txt does not allow')
    for problem in problems:
        print(problem)
    print(f'{files} files checked, {len(edges)} allowed edges, {len(problems)} problems')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
