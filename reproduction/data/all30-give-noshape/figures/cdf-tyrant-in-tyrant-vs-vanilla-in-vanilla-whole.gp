# Regenerate with `gnuplot PATH/TO/cdf-tyrant-in-tyrant-vs-vanilla-in-vanilla-whole.gp`: writes cdf-tyrant-in-tyrant-vs-vanilla-in-vanilla-whole.png and cdf-tyrant-in-tyrant-vs-vanilla-in-vanilla-whole.svg beside it.
if (exists("ARG0") && strlen(ARG0) > 51) { cd ARG0[1:strlen(ARG0)-51] }
set datafile missing "?"
do for [fmt in "png svg"] {
if (fmt eq "svg") { set terminal svg size 800,500 dynamic } else {
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) { set terminal pngcairo size 800,500 } else { set terminal png size 800,500 } }
set termoption noenhanced
set output "cdf-tyrant-in-tyrant-vs-vanilla-in-vanilla-whole.".fmt
set title "whole-swarm download times: tyrant-in-tyrant vs vanilla-in-vanilla"
set xlabel "download time (nominal s)"
set ylabel "fraction of downloads"
set yrange [0:1]
set key bottom right
plot "cdf-tyrant-in-tyrant-vs-vanilla-in-vanilla-whole.dat" index 0 using 1:2 with steps lw 2 lc 1 dt 1 title "tyrant-in-tyrant cap 100", \
     "cdf-tyrant-in-tyrant-vs-vanilla-in-vanilla-whole.dat" index 1 using 1:2 with steps lw 2 lc 2 dt 1 title "vanilla-in-vanilla cap 100"
set output
}
