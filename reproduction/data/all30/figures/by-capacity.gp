# Regenerate with `gnuplot PATH/TO/by-capacity.gp`: by-capacity.png and .svg beside it.
if (exists("ARG0") && strlen(ARG0) > 14) { cd ARG0[1:strlen(ARG0)-14] }
do for [fmt in "png svg"] {
if (fmt eq "svg") { set terminal svg size 640,420 dynamic } else {
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) { set terminal pngcairo size 640,420 } else { set terminal png size 640,420 } }
set termoption noenhanced
set output "by-capacity.".fmt
set title "all30: per leecher, median download time\nvanilla-in-vanilla / tyrant-in-tyrant"
set xlabel "upload cap, KiB/s"
set ylabel "ratio (> 1: faster under the strategy)"
set logscale xy
set grid
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2
plot "by-capacity.dat" using 1:2 with points pt 7 ps 0.6 notitle
set output
}
