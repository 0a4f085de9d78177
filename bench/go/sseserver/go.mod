module ringo/bench/go/sseserver

go 1.19
