module ringo/bench/go/fiberbench

go 1.19
