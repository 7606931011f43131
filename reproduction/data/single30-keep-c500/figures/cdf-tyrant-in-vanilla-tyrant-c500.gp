# Regenerate with `gnuplot PATH/TO/cdf-tyrant-in-vanilla-tyrant-c500.gp`: cdf-tyrant-in-vanilla-tyrant-c500.png and .svg beside it.
if (exists("ARG0") && strlen(ARG0) > 36) { cd ARG0[1:strlen(ARG0)-36] }
do for [fmt in "png svg"] {
if (fmt eq "svg") { set terminal svg size 640,420 dynamic } else {
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) { set terminal pngcairo size 640,420 } else { set terminal png size 640,420 } }
set termoption noenhanced
set output "cdf-tyrant-in-vanilla-tyrant-c500.".fmt
set title "single30-keep-c500: tyrant peers at 500 KiB/s, 10 runs\nvanilla-in-vanilla 89 downloads (+10 unfinished),\ntyrant-in-vanilla 67 (+10)"
set xlabel "download time, s"
set ylabel "fraction of downloads"
set yrange [0:1]
set grid
set key bottom right
plot "cdf-tyrant-in-vanilla-tyrant-c500.dat" index 0 using 1:2 with steps lw 2 title "vanilla-in-vanilla", \
     "cdf-tyrant-in-vanilla-tyrant-c500.dat" index 1 using 1:2 with steps lw 2 title "tyrant-in-vanilla"
set output
}
