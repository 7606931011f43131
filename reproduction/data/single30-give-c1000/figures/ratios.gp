# Regenerate with `gnuplot PATH/TO/ratios.gp`: writes ratios.png and ratios.svg beside it.
if (exists("ARG0") && strlen(ARG0) > 9) { cd ARG0[1:strlen(ARG0)-9] }
set datafile missing "?"
do for [fmt in "png svg"] {
if (fmt eq "svg") { set terminal svg size 800,144 dynamic } else {
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) { set terminal pngcairo size 800,144 } else { set terminal png size 800,144 } }
set termoption noenhanced
set output "ratios.".fmt
set title "paired ratios with 95% CI over runs (> 1: strategy faster; no bar: < 5 runs)"
set xlabel "geomean: baseline / strategy"
set yrange [0.5:-0.5]
set xrange [0:*]
set ytics nomirror
set grid x
set style fill solid 0.4
set arrow 1 from first 1, graph 0 to first 1, graph 1 nohead dt 2
plot "ratios.dat" using (0.5*$2):1:(0.5*$2):(0.35):6:ytic(5) with boxxyerror lc variable notitle, \
     "ratios.dat" using 2:1:3:4 with xerrorbars pt 7 ps 0.5 lc rgb "black" notitle
set output
}
