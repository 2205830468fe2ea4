// Command peers runs casty's eight Savina-style benchmarks (bench/*.c) and
// its ask benchmark in idiomatic Go, for comparison: one goroutine per
// actor, each with its own buffered channel as its mailbox.
//
//	peers BENCH PARAMS... [--workers N] [--reps R]
//
// Same parameters, same message counts, same completion rule and the same
// checks as the casty programs; one line per repetition:
//
//	RESULT lang=go bench=<name> params=<k=v,...> workers=<GOMAXPROCS> msgs=<n>
//	       secs=<s> msgs_per_sec=<r> maxrss_kb=<kb>
//
// casty's mailboxes are unbounded; each channel here is given the capacity of
// the most messages that can be pending in it at once, so a send never blocks
// (the flow control of count/mailbox and the one-outstanding-ping rule of big
// bound that number). The "latch" is an atomic countdown whose last arrival
// closes a channel the main goroutine waits on (BENCH_TIMEOUT_S, default 300).
package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	chunk      = 1000 // count, mailbox: messages per acknowledged chunk
	window     = 4    // count, mailbox: chunks unacknowledged at most
	spawnChunk = 1000 // fjcreate: children per spawner turn
)

// ---- harness ----------------------------------------------------------------

type param struct {
	name     string
	min, max uint64
}

type bench struct {
	name   string
	params []param
	run    func(r *run) uint64 // sets up, times (start..wait), checks; returns msgs
}

type run struct {
	p      []uint64
	left   atomic.Int64
	sum    atomic.Uint64
	done   chan struct{}
	t0, t1 time.Time
}

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
	os.Exit(1)
}

// start arms the latch for `arrivals` and starts the clock.
func (r *run) start(arrivals int64) {
	r.left.Store(arrivals)
	r.done = make(chan struct{})
	r.t0 = time.Now()
}

// arrive is one latch arrival carrying v; any goroutine.
func (r *run) arrive(v uint64) {
	r.sum.Add(v)
	if n := r.left.Add(-1); n == 0 {
		close(r.done)
	} else if n < 0 {
		die("latch: more arrivals than expected")
	}
}

// wait blocks until the latch opens, stops the clock, returns the sum.
func (r *run) wait() uint64 {
	limit := 300
	if v, err := strconv.Atoi(os.Getenv("BENCH_TIMEOUT_S")); err == nil && v > 0 {
		limit = v
	}
	select {
	case <-r.done:
	case <-time.After(time.Duration(limit) * time.Second):
		die("timed out waiting for completion: %d arrivals missing; goroutines=%d",
			r.left.Load(), runtime.NumGoroutine())
	}
	r.t1 = time.Now()
	return r.sum.Load()
}

func usage(b *bench) {
	fmt.Fprintf(os.Stderr, "usage: peers %s", b.name)
	for _, p := range b.params {
		fmt.Fprintf(os.Stderr, " %s", strings.ToUpper(p.name))
	}
	fmt.Fprintln(os.Stderr, " [--workers N] [--reps R]")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: peers BENCH PARAMS... [--workers N] [--reps R]")
		os.Exit(2)
	}
	var b *bench
	for i := range benches {
		if benches[i].name == os.Args[1] {
			b = &benches[i]
		}
	}
	if b == nil {
		fmt.Fprintf(os.Stderr, "peers: unknown benchmark '%s'\n", os.Args[1])
		os.Exit(2)
	}
	var p []uint64
	workers, reps := uint64(0), uint64(1)
	args := os.Args[2:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--workers" || a == "--reps":
			if i+1 >= len(args) {
				usage(b)
			}
			v, err := strconv.ParseUint(args[i+1], 10, 64)
			if err != nil || (a == "--workers" && v > 1024) || (a == "--reps" && v < 1) {
				usage(b)
			}
			if a == "--workers" {
				workers = v
			} else {
				reps = v
			}
			i++
		case strings.HasPrefix(a, "-") || len(p) >= len(b.params):
			usage(b)
		default:
			bp := b.params[len(p)]
			v, err := strconv.ParseUint(a, 10, 64)
			if err != nil || v < bp.min || v > bp.max {
				usage(b)
			}
			p = append(p, v)
		}
	}
	if len(p) != len(b.params) {
		usage(b)
	}
	if workers == 0 {
		workers = uint64(runtime.NumCPU())
	}
	runtime.GOMAXPROCS(int(workers))
	var kv []string
	for i, bp := range b.params {
		kv = append(kv, fmt.Sprintf("%s=%d", bp.name, p[i]))
	}
	for rep := uint64(0); rep < reps; rep++ {
		r := &run{p: p}
		msgs := b.run(r)
		secs := r.t1.Sub(r.t0).Seconds()
		rate := uint64(0)
		if secs > 0 {
			rate = uint64(float64(msgs) / secs)
		}
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		fmt.Printf("RESULT lang=go bench=%s params=%s workers=%d msgs=%d secs=%.6f msgs_per_sec=%d maxrss_kb=%d\n",
			b.name, strings.Join(kv, ","), runtime.GOMAXPROCS(0), msgs, secs, rate, ru.Maxrss)
	}
}

// xorshift64* (bench_rand) and the splitmix64 finaliser (bench_mix).
func rand64(s *uint64) uint64 {
	x := *s
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*s = x
	return x * 0x2545F4914F6CDD1D
}

func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	x ^= x >> 31
	return x
}

// ---- the benchmarks -------------------------------------------------------------

type signal uint8

const (
	start signal = iota
	pong
	ack
)

var benches = []bench{
	{"pingpong", []param{{"n", 1, 1 << 40}}, pingpong},
	{"count", []param{{"n", 1, 1 << 40}}, count},
	{"mailbox", []param{{"p", 1, 100000}, {"m", 1, 1 << 32}}, mailbox},
	{"threadring", []param{{"n", 1, 10000000}, {"r", 1, 1 << 40}}, threadring},
	{"fjthrput", []param{{"n", 1, 1 << 32}, {"a", 1, 10000000}}, fjthrput},
	{"fjcreate", []param{{"n", 1, 1 << 32}}, fjcreate},
	{"fib", []param{{"n", 0, 40}}, fib},
	{"big", []param{{"n", 1, 1 << 32}, {"w", 1, 10000000}}, big},
	{"ask", []param{{"n", 1, 1 << 32}}, ask},
}

// pingpong N: ping sends Ping{reply_to} to pong, which answers Pong; after N
// round trips ping arrives. msgs = 2N.
func pingpong(r *run) uint64 {
	n := r.p[0]
	ponger := make(chan chan<- signal, 1) // Ping{reply_to}
	pinger := make(chan signal, 1)        // Start, then Pongs
	go func() {
		for replyTo := range ponger {
			replyTo <- pong
		}
	}()
	go func() {
		left := n
		for m := range pinger {
			if m == pong {
				if left--; left == 0 {
					r.arrive(0)
					return
				}
			}
			ponger <- pinger
		}
	}()
	r.start(1)
	pinger <- start
	r.wait()
	close(ponger)
	return 2 * n
}

// count N: a producer sends N Incs to a counter in chunks of `chunk`, the last
// of each chunk carrying the producer's mailbox for an Ack, at most `window`
// chunks unacknowledged; then Query{reply_to=collector}; the collector arrives
// with the Total. msgs = N.
type counterMsg struct {
	ackTo   chan<- signal // Inc: nil but at chunk ends
	replyTo chan<- uint64 // non-nil: Query
}

func count(r *run) uint64 {
	n := r.p[0]
	counter := make(chan counterMsg, chunk*window+1)
	collector := make(chan uint64, 1)
	producer := make(chan signal, window+1)
	go func() {
		var c uint64
		for m := range counter {
			if m.replyTo != nil {
				m.replyTo <- c
				continue
			}
			c++
			if m.ackTo != nil {
				m.ackTo <- ack
			}
		}
	}()
	go func() {
		r.arrive(<-collector)
	}()
	go func() {
		var sent, pending uint64
		sendChunk := func() {
			end := min(sent+chunk, n)
			for ; sent+1 < end; sent++ {
				counter <- counterMsg{}
			}
			counter <- counterMsg{ackTo: producer}
			sent++
			pending++
		}
		for m := range producer {
			if m == start {
				for i := 0; i < window && sent < n; i++ {
					sendChunk()
				}
				continue
			}
			pending--
			if sent < n {
				sendChunk()
			} else if pending == 0 {
				counter <- counterMsg{replyTo: collector}
				return
			}
		}
	}()
	r.start(1)
	producer <- start
	if got := r.wait(); got != n {
		die("count: counter saw %d messages, expected %d", got, n)
	}
	close(counter)
	return n
}

func min(a, b uint64) uint64 {
	if a < b {
		return a
	}
	return b
}

// mailbox P M: P producers send M Items each to one receiver (chunked acks as
// in count); the receiver arrives after P*M. msgs = P*M.
func mailbox(r *run) uint64 {
	p, m := r.p[0], r.p[1]
	receiver := make(chan chan<- signal, min(p*m, p*chunk*window)) // Item{ack_to}
	go func() {
		var received uint64
		for ackTo := range receiver {
			if ackTo != nil {
				ackTo <- ack
			}
			if received++; received == p*m {
				r.arrive(received)
			}
		}
	}()
	producers := make([]chan signal, p)
	for i := range producers {
		mb := make(chan signal, window+1)
		producers[i] = mb
		go func() {
			var sent uint64
			sendChunk := func() {
				end := min(sent+chunk, m)
				for ; sent+1 < end; sent++ {
					receiver <- nil
				}
				receiver <- mb
				sent++
			}
			for sig := range mb {
				for i := 0; i < window && sent < m; i++ {
					sendChunk()
					if sig != start {
						break // an Ack: one more chunk
					}
				}
			}
		}()
	}
	r.start(1)
	for _, mb := range producers {
		mb <- start
	}
	if got := r.wait(); got != p*m {
		die("mailbox: receiver saw %d messages, expected %d", got, p*m)
	}
	close(receiver)
	for _, mb := range producers {
		close(mb)
	}
	return p * m
}

// threadring N R: a token passed R hops around a ring of N goroutines; the one
// that receives Token{0} arrives. msgs = R.
func threadring(r *run) uint64 {
	n, hops := r.p[0], r.p[1]
	ring := make([]chan uint64, n)
	for i := range ring {
		ring[i] = make(chan uint64, 1)
	}
	for i := range ring {
		in, next := ring[i], ring[(uint64(i)+1)%n]
		go func() {
			for left := range in {
				if left == 0 {
					r.arrive(0)
				} else {
					next <- left - 1
				}
			}
		}()
	}
	r.start(1)
	ring[0] <- hops
	r.wait()
	for _, c := range ring {
		close(c)
	}
	return hops
}

// fjthrput N A: main sends N Work{seed} to each of A goroutines round-robin;
// each costs Savina's work (savinaWork); after its N-th an actor arrives
// with its checksum. msgs = N*A.
// savinaWork is Savina's ForkJoinConfig.performComputation(37.2): sin(theta)
// squared, theta moved by the seed, as bench/fjthrput.c's savina_work.
func savinaWork(seed uint64) float64 {
	s := math.Sin(37.2 + float64(seed&1023)/1024.0)
	return s * s
}

func fjthrput(r *run) uint64 {
	n, a := r.p[0], r.p[1]
	actors := make([]chan uint64, a)
	for i := range actors {
		mb := make(chan uint64, n) // main never blocks, as with casty's mailboxes
		actors[i] = mb
		go func() {
			var acc float64
			for left := n; left > 0; left-- {
				acc += savinaWork(<-mb)
			}
			r.arrive(uint64(acc) | 1)
		}()
	}
	r.start(int64(a))
	for k := uint64(0); k < n; k++ {
		for _, mb := range actors {
			mb <- k
		}
	}
	r.wait()
	return n * a
}

// fjcreate N: a spawner creates N goroutines, spawnChunk per turn (it sends
// itself Next for the following chunk), and sends each one Work; each arrives
// and ends. msgs = N.
func fjcreate(r *run) uint64 {
	n := r.p[0]
	next := make(chan struct{}, 1)
	go func() {
		left := n
		for range next {
			for i := 0; i < spawnChunk && left > 0; i, left = i+1, left-1 {
				work := make(chan struct{}, 1)
				go func() {
					<-work
					r.arrive(0)
				}()
				work <- struct{}{}
			}
			if left == 0 {
				return
			}
			next <- struct{}{}
		}
	}()
	r.start(int64(n))
	next <- struct{}{}
	r.wait()
	return n
}

// fib N: one goroutine per call, each with its own mailbox: the first message
// is Compute{n}, then (n >= 2) the two children's Results; it replies the sum
// to its parent (the root arrives with it) and ends. msgs = 2*fib(N+1)-1.
func fibCall(r *run, mb chan uint64, parent chan<- uint64) {
	v := <-mb // Compute
	if v >= 2 {
		for k := uint64(1); k <= 2; k++ {
			child := make(chan uint64, 2)
			go fibCall(r, child, mb)
			child <- v - k
		}
		v = <-mb + <-mb
	}
	if parent == nil {
		r.arrive(v)
	} else {
		parent <- v
	}
}

func fib(r *run) uint64 {
	n := r.p[0]
	a, b := uint64(0), uint64(1)
	for i := uint64(0); i < n; i++ {
		a, b = b, a+b
	}
	root := make(chan uint64, 2)
	go fibCall(r, root, nil)
	r.start(1)
	root <- n
	if got := r.wait(); got != a {
		die("fib(%d): got %d, expected %d", n, got, a)
	}
	return 2*b - 1
}

// big N W: W goroutines each ping a random other one N times, one ping
// outstanding each, answering every Ping they get; each arrives at its N-th
// Pong. A message is the sender's index (Ping) or -1 (Pong) or -2 (Start).
// Capacity W+1: up to W-1 pings, one pong and the start. msgs = 2*N*W.
func big(r *run) uint64 {
	n, w := r.p[0], r.p[1]
	const pongMsg, startMsg = -1, -2
	peers := make([]chan int32, w)
	for i := range peers {
		peers[i] = make(chan int32, w+1)
	}
	for i := range peers {
		i := uint64(i)
		go func() {
			rng, left := mix(i+1)|1, n
			send := func() {
				to := i
				if w > 1 {
					to = rand64(&rng) % (w - 1)
					if to >= i {
						to++
					}
				}
				peers[to] <- int32(i)
			}
			for m := range peers[i] {
				switch {
				case m >= 0:
					peers[m] <- pongMsg
				case m == pongMsg:
					if left--; left == 0 {
						r.arrive(0)
					} else {
						send()
					}
				default:
					send()
				}
			}
		}()
	}
	r.start(int64(w))
	for _, mb := range peers {
		mb <- startMsg
	}
	r.wait()
	for _, mb := range peers {
		close(mb)
	}
	return 2 * n * w
}

// ask N (bench/ask.c with one asking thread): the main goroutine asks an echo
// goroutine N times, one at a time, as a caller that blocks for a reply does
// in Go: a fresh reply channel per ask (casty_ask's promise), the request
// with it, then a receive. msgs = N asks (each a request and a reply).
type askRequest struct {
	value uint64
	reply chan<- uint64
}

func ask(r *run) uint64 {
	n := r.p[0]
	echo := make(chan askRequest, 1)
	go func() {
		for rq := range echo {
			rq.reply <- rq.value + 1
		}
	}()
	r.start(1)
	for i := uint64(0); i < n; i++ {
		reply := make(chan uint64, 1)
		echo <- askRequest{i, reply}
		if v := <-reply; v != i+1 {
			die("ask: reply %d is wrong", i)
		}
	}
	r.arrive(n)
	r.wait()
	close(echo)
	return n
}
