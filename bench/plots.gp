# bench/plots.gp -- draws the PNGs of bench/out from the .dat files that
# bench/bench.py writes.  Usage: gnuplot -e "outdir='bench/out'" bench/plots.gp
if (!exists("outdir")) outdir = "bench/out"
f(name) = outdir."/".name
has(name) = int(system("grep -vc '^#' '".f(name)."' 2>/dev/null || echo 0")) > 0

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1100,620 enhanced font "DejaVu Sans,11" noenhanced
} else {
    set terminal png size 1100,620 noenhanced
}
set encoding utf8
set style fill solid 0.85 border -1
set grid ytics lc rgb "#dddddd"
set border 3
set xtics nomirror
set ytics nomirror

# ---------------------------------------------------------------- throughput
if (has("throughput.dat")) {
    set output f("throughput.png")
    set title "Throughput of tiny items: taskfarm and GNU parallel (--pipe cat, 2 workers) vs raw ZeroMQ (8-byte messages)"
    set ylabel "million items (or messages) per second"
    set xlabel ""
    set boxwidth 0.6
    set yrange [0:*]
    set xrange [-0.6:*]
    set key off
    set bmargin 5
    plot f("throughput.dat") using 1:3:4:xticlabels(2) with boxes lc rgb variable notitle, \
         ''                  using 1:3:(sprintf("%.2f M/s", $3)) with labels offset 0,0.8 notitle
    unset output
    set bmargin
}

# ---------------------------------------------------------------- scaling
if (has("scaling.dat")) {
    set output f("scaling.png")
    set multiplot layout 1,2 title "Sleep-bound speed-up (items × 20 ms via tokenize --pipe), vs sequential tokenize"
    set key top left box opaque
    set xlabel "workers N"
    set xrange [0.5:8.5]
    set xtics 1
    set title "speed-up = sequential time ÷ taskfarm time"
    set ylabel "speed-up"
    set yrange [0:11]
    lo = has("scaling_loopback.dat")
    ns = has("scaling_netns.dat")
    plot x with lines dt 2 lw 1.5 lc rgb "#444444" title "ideal (= N)", \
         0.9*x with lines dt 3 lw 1.5 lc rgb "#228833" title "target (0.9 × N)", \
         f("scaling.dat") using 1:2 with linespoints pt 7 ps 1.3 lw 2 lc rgb "#ee6677" title "taskfarm run -j N --pipe", \
         f(lo ? "scaling_loopback.dat" : "scaling.dat") using ($1-0.1):(lo ? $2 : 1/0) with points pt 5 ps 1.6 lc rgb "#4477aa" title "ventilator+sink + 2 × worker -j 2, loopback", \
         f(ns ? "scaling_netns.dat" : "scaling.dat") using ($1+0.1):(ns ? $2 : 1/0) with points pt 9 ps 2 lc rgb "#aa3377" title "same, across 3 netns hosts (TCP)"
    set title "efficiency = speed-up ÷ N"
    set ylabel "efficiency"
    set yrange [0:1.15]
    set key bottom left box opaque
    plot 1 with lines dt 2 lw 1.5 lc rgb "#444444" title "ideal (1.0)", \
         0.9 with lines dt 3 lw 1.5 lc rgb "#228833" title "target (≥ 0.9)", \
         f("scaling.dat") using 1:3 with linespoints pt 7 ps 1.3 lw 2 lc rgb "#ee6677" title "taskfarm run -j N --pipe", \
         f(lo ? "scaling_loopback.dat" : "scaling.dat") using ($1-0.1):(lo ? $3 : 1/0) with points pt 5 ps 1.6 lc rgb "#4477aa" title "ventilator+sink + 2 × worker -j 2, loopback", \
         f(ns ? "scaling_netns.dat" : "scaling.dat") using ($1+0.1):(ns ? $3 : 1/0) with points pt 9 ps 2 lc rgb "#aa3377" title "same, across 3 netns hosts (TCP)"
    unset multiplot
    unset output
    set xtics autofreq
    set autoscale x
}

# ---------------------------------------------------------------- ratios
if (has("ratios.dat")) {
    set output f("ratios.png")
    set terminal push
    if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
        set terminal pngcairo size 1300,650 enhanced font "DejaVu Sans,11" noenhanced
    } else {
        set terminal png size 1300,650 noenhanced
    }
    set output f("ratios.png")
    set title "Every target: measured ratio next to its goal (lower is better for ≤ goals, higher for ≥ goals)"
    set ylabel "ratio"
    set xlabel ""
    set key outside top center horizontal
    set boxwidth 0.38
    set bmargin 6
    set xrange [-0.6:*]
    # the largest measured or goal value (the last three fields are measured, goal, colour)
    ymax = 1.12 * real(system("awk '!/^#/ { if ($(NF-2) > m) m = $(NF-2); if ($(NF-1) > m) m = $(NF-1) } END { print m + 0 }' '".f("ratios.dat")."'"))
    set yrange [0:ymax]
    set xtics font ",9"
    plot f("ratios.dat") using ($1-0.2):3:5:xticlabels(2) with boxes lc rgb variable notitle, \
         ''              using ($1+0.2):4 with boxes fs pattern 1 border lc rgb "#555555" lc rgb "#888888" title "goal", \
         ''              using ($1-0.2):3:(sprintf("%.3g", $3)) with labels offset 0,0.7 font ",9" notitle, \
         keyentry with boxes fs solid 0.85 lc rgb "#228833" title "measured: met", \
         keyentry with boxes fs solid 0.85 lc rgb "#cc3311" title "measured: missed"
    unset output
}
