# Regenerate with `gnuplot PATH/TO/cdf-thieves-in-vanilla-vanilla-c100.gp`: cdf-thieves-in-vanilla-vanilla-c100.png and .svg beside it.
if (exists("ARG0") && strlen(ARG0) > 38) { cd ARG0[1:strlen(ARG0)-38] }
do for [fmt in "png svg"] {
if (fmt eq "svg") { set terminal svg size 640,420 dynamic } else {
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) { set terminal pngcairo size 640,420 } else { set terminal png size 640,420 } }
set termoption noenhanced
set output "cdf-thieves-in-vanilla-vanilla-c100.".fmt
set title "thief30-long: vanilla peers at 100 KiB/s, 10 runs\nvanilla-in-vanilla 1142 downloads (+268 unfinished),\nthieves-in-vanilla 1068 (+267)"
set xlabel "download time, s"
set ylabel "fraction of downloads"
set yrange [0:1]
set grid
set key bottom right
plot "cdf-thieves-in-vanilla-vanilla-c100.dat" index 0 using 1:2 with steps lw 2 title "vanilla-in-vanilla", \
     "cdf-thieves-in-vanilla-vanilla-c100.dat" index 1 using 1:2 with steps lw 2 title "thieves-in-vanilla"
set output
}
