# Regenerate with `gnuplot PATH/TO/cdf-tyrant-in-vanilla-tyrant-c1000.gp`: cdf-tyrant-in-vanilla-tyrant-c1000.png and .svg beside it.
if (exists("ARG0") && strlen(ARG0) > 37) { cd ARG0[1:strlen(ARG0)-37] }
do for [fmt in "png svg"] {
if (fmt eq "svg") { set terminal svg size 640,420 dynamic } else {
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) { set terminal pngcairo size 640,420 } else { set terminal png size 640,420 } }
set termoption noenhanced
set output "cdf-tyrant-in-vanilla-tyrant-c1000.".fmt
set title "single30-keep-c1000: tyrant peers at 1000 KiB/s, 10 runs\nvanilla-in-vanilla 78 downloads (+10 unfinished),\ntyrant-in-vanilla 68 (+10)"
set xlabel "download time, s"
set ylabel "fraction of downloads"
set yrange [0:1]
set grid
set key bottom right
plot "cdf-tyrant-in-vanilla-tyrant-c1000.dat" index 0 using 1:2 with steps lw 2 title "vanilla-in-vanilla", \
     "cdf-tyrant-in-vanilla-tyrant-c1000.dat" index 1 using 1:2 with steps lw 2 title "tyrant-in-vanilla"
set output
}
