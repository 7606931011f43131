#!/usr/bin/env python3
"""gnuplot: the frame of every figure the reproduction scripts draw (cdf.py, sweep.py,
by_capacity.py) — a .gp file that writes STEM.png and STEM.svg beside itself, whatever
directory gnuplot runs from — and running gnuplot on it when it is installed (the .dat and
.gp files are written either way, so a figure can be drawn later). Python 3 stdlib only.
"""

import shutil
import subprocess

HEAD = """# Regenerate with `gnuplot PATH/TO/{stem}.gp`: {stem}.png and .svg beside it.
if (exists("ARG0") && strlen(ARG0) > {cut}) {{ cd ARG0[1:strlen(ARG0)-{cut}] }}
do for [fmt in "png svg"] {{
if (fmt eq "svg") {{ set terminal svg size 640,420 dynamic }} else {{
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {{ set terminal pngcairo size 640,420 }} else {{ set terminal png size 640,420 }} }}
set termoption noenhanced
set output "{stem}.".fmt
"""


def script(stem, body):
    """The .gp text for figure STEM: the frame around body (its `set` and `plot` lines)."""
    # cut: the length of "STEM.gp" plus the "/" before it, stripped from ARG0 to find the
    # script's own directory.
    return HEAD.format(stem=stem, cut=len(stem) + 3) + body + "set output\n}\n"


def draw(gp):
    """Run gnuplot on the script at path gp, if gnuplot is installed; True if it ran."""
    if not shutil.which("gnuplot"):
        return False
    subprocess.run(["gnuplot", gp], check=False)
    return True
