// go.mod — the Go side of `make bench`: Go's own context on the BENCH.md workloads,
// a standalone module without dependencies (builds offline).
module ctxbench

go 1.26
