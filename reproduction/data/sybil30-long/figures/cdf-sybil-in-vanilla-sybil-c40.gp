# Regenerate with `gnuplot PATH/TO/cdf-sybil-in-vanilla-sybil-c40.gp`: cdf-sybil-in-vanilla-sybil-c40.png and .svg beside it.
if (exists("ARG0") && strlen(ARG0) > 33) { cd ARG0[1:strlen(ARG0)-33] }
do for [fmt in "png svg"] {
if (fmt eq "svg") { set terminal svg size 640,420 dynamic } else {
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) { set terminal pngcairo size 640,420 } else { set terminal png size 640,420 } }
set termoption noenhanced
set output "cdf-sybil-in-vanilla-sybil-c40.".fmt
set title "sybil30-long: sybil peers at 40 KiB/s, 10 runs\nvanilla-in-vanilla 43 downloads (+10 unfinished),\nsybil-in-vanilla 41 (+10)"
set xlabel "download time, s"
set ylabel "fraction of downloads"
set yrange [0:1]
set grid
set key bottom right
plot "cdf-sybil-in-vanilla-sybil-c40.dat" index 0 using 1:2 with steps lw 2 title "vanilla-in-vanilla", \
     "cdf-sybil-in-vanilla-sybil-c40.dat" index 1 using 1:2 with steps lw 2 title "sybil-in-vanilla"
set output
}
