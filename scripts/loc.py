#!/usr/bin/env python3
"""loc.py [DIR ...]: lines of code per Rust file, the way issue 10 counts them.

A line counts when it is neither blank nor a comment-only line (//, ///, //!), and it is
not test code: files named tests.rs, files under a tests/ folder and `#[cfg(test)]` items
are left out. Prints one line per file (code lines, all lines, path), then the total, and
flags any non-test file over 500 lines. Default DIR: src (the client crate)."""
import os
import re
import sys


def strip_test_items(lines):
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip().startswith("#[cfg(test)]"):
            j = i + 1
            if j < len(lines) and re.match(r"\s*(pub(\(crate\))?\s+)?mod \w+;", lines[j]):
                i = j + 1
                continue
            depth, opened = 0, False
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                opened = opened or "{" in lines[j]
                j += 1
                if opened and depth <= 0:
                    break
            i = j
            continue
        out.append(lines[i])
        i += 1
    return out


def code_lines(lines):
    return sum(1 for l in lines if l.strip() and not l.strip().startswith("//"))


def main():
    roots = sys.argv[1:] or ["src"]
    total, long_files = 0, []
    for root in roots:
        for dirpath, _, files in sorted(os.walk(root)):
            if "tests" in dirpath.split(os.sep):
                continue
            for f in sorted(files):
                if not f.endswith(".rs") or f == "tests.rs":
                    continue
                path = os.path.join(dirpath, f)
                lines = open(path, encoding="utf-8").read().split("\n")
                n = code_lines(strip_test_items(lines))
                total += n
                all_lines = len(lines) - (lines[-1] == "")
                if all_lines > 500:
                    long_files.append(path)
                print(f"{n:6} {all_lines:6}  {path}")
    print(f"{total:6} code lines in {' '.join(roots)}")
    for p in long_files:
        print(f"over 500 lines: {p}")


if __name__ == "__main__":
    main()
