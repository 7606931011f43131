# Regenerate with `gnuplot PATH/TO/time-rebel-in-tyrant-vs-vanilla-in-tyrant-rebel.gp`: writes time-rebel-in-tyrant-vs-vanilla-in-tyrant-rebel.png and time-rebel-in-tyrant-vs-vanilla-in-tyrant-rebel.svg beside it.
if (exists("ARG0") && strlen(ARG0) > 50) { cd ARG0[1:strlen(ARG0)-50] }
set datafile missing "?"
do for [fmt in "png svg"] {
if (fmt eq "svg") { set terminal svg size 800,500 dynamic } else {
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) { set terminal pngcairo size 800,500 } else { set terminal png size 800,500 } }
set termoption noenhanced
set output "time-rebel-in-tyrant-vs-vanilla-in-tyrant-rebel.".fmt
set title "rebel-in-tyrant vs vanilla-in-tyrant: rebel peers, median and p10-p90"
set xrange [42.5:57.5]
set xlabel "focus peer upload cap (KiB/s)"
set ylabel "download time (nominal s)"
set yrange [0:*]
set key top right
plot "time-rebel-in-tyrant-vs-vanilla-in-tyrant-rebel.dat" using ($1*0.97):2:3:4 with yerrorlines lw 2 title "rebel-in-tyrant", \
     "time-rebel-in-tyrant-vs-vanilla-in-tyrant-rebel.dat" using ($1*1.03):5:6:7 with yerrorlines lw 2 title "vanilla-in-tyrant"
set output
}
