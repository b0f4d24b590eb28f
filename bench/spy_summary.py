"""Self and inclusive shares of a py-spy raw profile (collapsed stacks), as in
bench/profiles/*.txt:  .venv/bin/python bench/spy_summary.py out.txt"""
import collections
import sys

self_t: collections.Counter[str] = collections.Counter()
incl: collections.Counter[str] = collections.Counter()
total = 0
with open(sys.argv[1]) as profile:
    for line in profile:
        stack, _, count = line.rstrip().rpartition(' ')
        n = int(count)
        frames = stack.split(';')
        total += n
        self_t[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
print("total samples", total)
for f, n in self_t.most_common(40):
    print(f"{100*n/total:5.1f}% self {f[:150]}")
print('---- inclusive')
for f, n in incl.most_common(100):
    print(f"{100*n/total:5.1f}% incl {f[:150]}")
