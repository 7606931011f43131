# Regenerate with `gnuplot PATH/TO/cdf-rebel-in-vanilla-rebel-c50.gp`: cdf-rebel-in-vanilla-rebel-c50.png and .svg beside it.
if (exists("ARG0") && strlen(ARG0) > 33) { cd ARG0[1:strlen(ARG0)-33] }
do for [fmt in "png svg"] {
if (fmt eq "svg") { set terminal svg size 640,420 dynamic } else {
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) { set terminal pngcairo size 640,420 } else { set terminal png size 640,420 } }
set termoption noenhanced
set output "cdf-rebel-in-vanilla-rebel-c50.".fmt
set title "rebel30: rebel peers at 50 KiB/s, 2 runs\nvanilla-in-vanilla 22 downloads (+2 unfinished),\nrebel-in-vanilla 24 (+2)"
set xlabel "download time, s"
set ylabel "fraction of downloads"
set yrange [0:1]
set grid
set key bottom right
plot "cdf-rebel-in-vanilla-rebel-c50.dat" index 0 using 1:2 with steps lw 2 title "vanilla-in-vanilla", \
     "cdf-rebel-in-vanilla-rebel-c50.dat" index 1 using 1:2 with steps lw 2 title "rebel-in-vanilla"
set output
}
