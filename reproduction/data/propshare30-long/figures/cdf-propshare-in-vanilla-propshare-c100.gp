# Regenerate with `gnuplot PATH/TO/cdf-propshare-in-vanilla-propshare-c100.gp`: cdf-propshare-in-vanilla-propshare-c100.png and .svg beside it.
if (exists("ARG0") && strlen(ARG0) > 42) { cd ARG0[1:strlen(ARG0)-42] }
do for [fmt in "png svg"] {
if (fmt eq "svg") { set terminal svg size 640,420 dynamic } else {
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) { set terminal pngcairo size 640,420 } else { set terminal png size 640,420 } }
set termoption noenhanced
set output "cdf-propshare-in-vanilla-propshare-c100.".fmt
set title "propshare30-long: propshare peers at 100 KiB/s, 10 runs\nvanilla-in-vanilla 62 downloads (+10 unfinished),\npropshare-in-vanilla 60 (+10)"
set xlabel "download time, s"
set ylabel "fraction of downloads"
set yrange [0:1]
set grid
set key bottom right
plot "cdf-propshare-in-vanilla-propshare-c100.dat" index 0 using 1:2 with steps lw 2 title "vanilla-in-vanilla", \
     "cdf-propshare-in-vanilla-propshare-c100.dat" index 1 using 1:2 with steps lw 2 title "propshare-in-vanilla"
set output
}
