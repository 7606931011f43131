# Regenerate with `gnuplot PATH/TO/time-tyrant-in-vanilla-vs-vanilla-in-vanilla-tyrant.gp`: writes time-tyrant-in-vanilla-vs-vanilla-in-vanilla-tyrant.png and time-tyrant-in-vanilla-vs-vanilla-in-vanilla-tyrant.svg beside it.
if (exists("ARG0") && strlen(ARG0) > 54) { cd ARG0[1:strlen(ARG0)-54] }
set datafile missing "?"
do for [fmt in "png svg"] {
if (fmt eq "svg") { set terminal svg size 800,500 dynamic } else {
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) { set terminal pngcairo size 800,500 } else { set terminal png size 800,500 } }
set termoption noenhanced
set output "time-tyrant-in-vanilla-vs-vanilla-in-vanilla-tyrant.".fmt
set title "tyrant-in-vanilla vs vanilla-in-vanilla: tyrant peers, median and p10-p90"
set xrange [850:1150]
set xlabel "focus peer upload cap (KiB/s)"
set ylabel "download time (nominal s)"
set yrange [0:*]
set key top right
plot "time-tyrant-in-vanilla-vs-vanilla-in-vanilla-tyrant.dat" using ($1*0.97):2:3:4 with yerrorlines lw 2 title "tyrant-in-vanilla", \
     "time-tyrant-in-vanilla-vs-vanilla-in-vanilla-tyrant.dat" using ($1*1.03):5:6:7 with yerrorlines lw 2 title "vanilla-in-vanilla"
set output
}
