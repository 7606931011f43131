# Regenerate with `gnuplot PATH/TO/sweep-single30.gp`: sweep-single30.png and .svg beside it.
if (exists("ARG0") && strlen(ARG0) > 17) { cd ARG0[1:strlen(ARG0)-17] }
do for [fmt in "png svg"] {
if (fmt eq "svg") { set terminal svg size 640,420 dynamic } else {
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) { set terminal pngcairo size 640,420 } else { set terminal png size 640,420 } }
set termoption noenhanced
set output "sweep-single30.".fmt
set title "single30: one tyrant vs vanilla in its place,\n95 % CI over runs (give 7 caps, keep 7 caps)"
set xlabel "focus peer's upload cap, KiB/s"
set ylabel "median vanilla / median tyrant download time"
set logscale x
set xrange [6.66667:1500]
set grid
set key top right
set arrow from 6.66667,1 to 1500,1 nohead dt 2
plot "sweep-single30.dat" index 0 using ($1*0.98):2:3:4 with yerrorlines lw 2 title "give excess", \
     "sweep-single30.dat" index 1 using ($1*1.02):2:3:4 with yerrorlines lw 2 title "keep excess"
set output
}
