#!/usr/bin/env python3
"""Per-request numbers from a callgrind dump: instructions, calls into the allocator and the Swift runtime,
and the functions with the most instructions of their own.

    bench/callgrind_summary.py CALLGRIND_OUT REQUESTS [TOP]

Reads the callgrind file format (name compression, `calls=` lines followed by the callee's inclusive cost) with
no other tool: callgrind_annotate 3.19 lists only `clone` for binaries without debug information.
"""
import collections
import re
import sys

COUNTED_CALLS = ("malloc", "free", "swift_allocObject", "swift_retain", "swift_release", "zmq_msg_send",
                 "zmq_msg_recv")


def summarize(path):
    names = {}
    self_cost = collections.Counter()
    calls = collections.Counter()
    function = callee = None
    pending_calls = None
    total = 0

    def resolve(text):
        match = re.match(r"\((\d+)\)(?: (.*))?", text)
        if not match:
            return text
        if match.group(2) is not None:
            names[match.group(1)] = match.group(2)
        return names.get(match.group(1), "?" + match.group(1))

    with open(path, errors="replace") as lines:
        for line in lines:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                function = resolve(line[3:])
            elif line.startswith("cfn="):
                callee = resolve(line[4:])
            elif line.startswith("calls="):
                pending_calls = int(line[6:].split()[0])
            elif line.startswith("summary:"):
                total = int(line.split()[1])
            elif line and (line[0].isdigit() or line[0] in "+-*"):
                fields = line.split()
                if len(fields) < 2:
                    continue
                if pending_calls is not None:  # the callee's inclusive cost, not this function's own
                    calls[callee] += pending_calls
                    pending_calls = None
                else:
                    self_cost[function] += int(fields[1])
    return total, self_cost, calls


def main():
    path, requests = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    total, self_cost, calls = summarize(path)
    print(f"- instructions per request: {total / requests:,.0f}")
    print("- calls per request: " + ", ".join(f"{name} {calls[name] / requests:.1f}" for name in COUNTED_CALLS))
    print()
    print("| share | instructions per request | function (self) |")
    print("|---:|---:|---|")
    for name, cost in self_cost.most_common(top):
        print(f"| {100 * cost / total:.1f}% | {cost / requests:,.0f} | `{name}` |")


if __name__ == "__main__":
    main()
