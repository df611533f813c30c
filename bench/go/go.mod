module ctxbench

go 1.26
