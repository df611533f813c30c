// main.go — the BENCH.md workloads written with Go's own context package;
// prints one JSON object {name: value}. "mem" measures bytes per live ctx alone.
package main

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	sink  int
	first = true
	out   strings.Builder
)

func emit(name string, v float64) {
	if first {
		out.WriteString("{")
	} else {
		out.WriteString(", ")
	}
	first = false
	fmt.Fprintf(&out, "%q: %.3f", name, v)
}

func perOp(t0 time.Time, n int) float64 { return float64(time.Since(t0).Nanoseconds()) / float64(n) }

func createCancel(parent context.Context, timeout bool, n int) float64 {
	t0 := time.Now()
	for i := 0; i < n; i++ {
		var cancel context.CancelFunc
		if timeout {
			_, cancel = context.WithTimeout(parent, time.Hour)
		} else {
			_, cancel = context.WithCancel(parent)
		}
		cancel()
	}
	return perOp(t0, n)
}

func doneCheck(n int) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hits := 0
	t0 := time.Now()
	for i := 0; i < n; i++ {
		select {
		case <-ctx.Done():
			hits++
		default:
		}
	}
	r := perOp(t0, n)
	sink = hits
	return r
}

func errCheck(n int) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hits := 0
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			hits++
		}
	}
	r := perOp(t0, n)
	sink = hits
	return r
}

type key int

func valueDepth10(n int) float64 {
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		ctx = context.WithValue(ctx, key(i), i)
	}
	hits := 0
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if ctx.Value(key(0)) != nil { // bound 10 layers up
			hits++
		}
	}
	r := perOp(t0, n)
	sink = hits
	return r
}

func cancelTree() float64 {
	t0 := time.Now()
	root, cancel := context.WithCancel(context.Background())
	level := []context.Context{root}
	n := 0
	for depth := 1; depth <= 5; depth++ {
		next := make([]context.Context, 0, len(level)*10)
		for _, p := range level {
			for i := 0; i < 10; i++ {
				c, _ := context.WithCancel(p)
				next = append(next, c)
				n++
			}
		}
		level = next
	}
	cancel()
	return perOp(t0, n)
}

func twoThreads(n int) float64 {
	p, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	t0 := time.Now()
	for t := 0; t < 2; t++ {
		wg.Add(1)
		go func() { defer wg.Done(); createCancel(p, false, n) }()
	}
	wg.Wait()
	return perOp(t0, 2*n)
}

func timersWithLive(live, n int) float64 {
	cancels := make([]context.CancelFunc, live)
	for i := range cancels {
		_, cancels[i] = context.WithTimeout(context.Background(), time.Hour)
	}
	r := createCancel(context.Background(), true, n)
	for _, c := range cancels {
		c()
	}
	return r
}

func lateness() {
	const N = 100000
	deadlines := make([]time.Time, N)
	seen := make([]time.Duration, N)
	start := time.Now().Add(500 * time.Millisecond) // all are made before the first fires
	for i := range deadlines {
		deadlines[i] = start.Add(time.Duration(int64(time.Second) * int64(i) / N))
	}
	seed := uint32(42)
	for i := N - 1; i > 0; i-- { // made in shuffled order, as in the C run
		seed = seed*1103515245 + 12345
		j := int((seed >> 8) % uint32(i+1))
		deadlines[i], deadlines[j] = deadlines[j], deadlines[i]
	}
	var wg sync.WaitGroup
	wg.Add(N)
	cancels := make([]context.CancelFunc, N)
	for i := 0; i < N; i++ {
		ctx, cancel := context.WithDeadline(context.Background(), deadlines[i])
		cancels[i] = cancel
		i := i
		context.AfterFunc(ctx, func() { seen[i] = time.Since(deadlines[i]); wg.Done() })
	}
	if time.Now().After(start) {
		fmt.Fprintln(os.Stderr, "lateness: setup took longer than 0.5 s")
	}
	wg.Wait()
	for _, c := range cancels {
		c()
	}
	sort.Slice(seen, func(a, b int) bool { return seen[a] < seen[b] })
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	emit("timer_lateness_p50_us", us(seen[N/2]))
	emit("timer_lateness_p99_us", us(seen[N*99/100]))
	emit("timer_lateness_max_us", us(seen[N-1]))
}

// cancelWake: one goroutine waits on each round's context in turn (handed
// the context, it blocks on Done); the time from the cancel call to it running
// again. The C run keeps one waiting thread the same way.
func cancelWake(n int) {
	lat := make([]time.Duration, n)
	next := make(chan context.Context)
	woke := make(chan time.Time)
	go func() {
		for ctx := range next {
			<-ctx.Done()
			woke <- time.Now()
		}
	}()
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		next <- ctx
		for t := time.Now(); time.Since(t) < 50*time.Microsecond; { // 50 us for it to block, as in C
		}
		t0 := time.Now()
		cancel()
		lat[i] = (<-woke).Sub(t0)
	}
	close(next)
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	emit("cancel_wake_p50_us", us(lat[n/2]))
	emit("cancel_wake_p99_us", us(lat[n*99/100]))
}

// waitAny1k: one goroutine selects over the Done channels of 1,000 live
// contexts (reflect.Select); the canceler gives it a fixed 200 us to block
// after it announced the round, cancels one chosen at random, and the op's
// cost is the round trip minus those 200 us (as in the C run).
func waitAny1k(n int) float64 {
	const K = 1000
	const delay = 200 * time.Microsecond
	ctxs := make([]context.Context, K)
	cancels := make([]context.CancelFunc, K)
	for i := range ctxs {
		ctxs[i], cancels[i] = context.WithCancel(context.Background())
	}
	var entering, got atomic.Int64
	entering.Store(-1)
	got.Store(-1)
	go func() {
		for i := 0; i < n; i++ {
			for got.Load() != -1 {
			}
			cases := make([]reflect.SelectCase, K)
			for j, c := range ctxs {
				cases[j] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.Done())}
			}
			entering.Store(int64(i))
			chosen, _, _ := reflect.Select(cases)
			got.Store(int64(chosen))
		}
	}()
	seed := uint32(7)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		seed = seed*1103515245 + 12345
		r := int((seed >> 8) % K)
		for entering.Load() != int64(i) {
		}
		for t := time.Now(); time.Since(t) < delay; {
		}
		cancels[r]()
		var w int64
		for w = got.Load(); w < 0; w = got.Load() {
		}
		if int(w) != r {
			panic("wait_any_1k: woke for the wrong context")
		}
		ctxs[r], cancels[r] = context.WithCancel(context.Background())
		got.Store(-1)
	}
	el := time.Since(t0)
	for _, c := range cancels {
		c()
	}
	return (float64(el.Nanoseconds())/float64(n) - float64(delay.Nanoseconds())) / 1e3
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	var pages, res int64
	fmt.Sscan(string(b), &pages, &res)
	return res * int64(os.Getpagesize())
}

func mem() {
	const N = 100000
	p, cancel := context.WithCancel(context.Background())
	defer cancel()
	keep := make([]context.Context, N)
	cancels := make([]context.CancelFunc, N)
	runtime.GC()
	before := rss()
	for i := 0; i < N; i++ {
		keep[i], cancels[i] = context.WithTimeout(p, time.Hour)
	}
	runtime.GC()
	emit("bytes_per_live_timeout_ctx", float64(rss()-before)/N)
	runtime.KeepAlive(keep)
	runtime.KeepAlive(cancels)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "mem" {
		mem()
	} else {
		p, cancel := context.WithCancel(context.Background())
		createCancel(context.Background(), true, 100000) // warm up
		emit("with_cancel_cancel", createCancel(context.Background(), false, 2000000))
		emit("with_cancel_child_of_cancelable", createCancel(p, false, 2000000))
		emit("with_timeout_cancel", createCancel(context.Background(), true, 2000000))
		emit("done_check", doneCheck(50000000))
		emit("err_check", errCheck(50000000))
		emit("value_depth10", valueDepth10(10000000))
		cancelTree()
		emit("cancel_tree_per_node", cancelTree())
		emit("common_parent_cancel_2threads", twoThreads(1000000))
		emit("timer_add_cancel_1k", timersWithLive(1000, 2000000))
		emit("timer_add_cancel_1m", timersWithLive(1000000, 2000000))
		lateness()
		cancelWake(2000)
		emit("wait_any_1k", waitAny1k(2000))
		cancel()
	}
	out.WriteString("}")
	fmt.Println(out.String())
}
