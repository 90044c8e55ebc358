package live

// Real HTTP backends, and clients that send requests through HAProxy's
// frontend.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var nextBackendIP atomic.Int32 // 0..149: 127.0.25.100-249, in turn

// slowsBegun counts the /slow requests every backend began (the tests of
// this package run one at a time).
var slowsBegun atomic.Int64

// backend is an HTTP server on its own loopback address. It answers its
// name (and its address in X-Backend), counts the requests of clients (not
// HAProxy's health checks, which ask for /), and answers the health check
// 200 while healthy, 503 otherwise.
type backend struct {
	name    string
	ip      string
	port    int
	hits    atomic.Int64
	checks  atomic.Int64 // health checks answered
	slows   atomic.Int64 // /slow requests begun
	healthy atomic.Bool
	srv     *http.Server
}

func (b *backend) member() member { return member{name: b.name, addr: b.ip, port: b.port} }
func (b *backend) addr() string   { return net.JoinHostPort(b.ip, strconv.Itoa(b.port)) }

// startBackend starts backend name on the next address of 127.X.25.100-249;
// it stops when the test ends.
func startBackend(t testing.TB, name string) *backend {
	t.Helper()
	ip := fmt.Sprintf("%s%d", netPrefix, 100+(nextBackendIP.Add(1)-1)%150)
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, ip: ip, port: ln.Addr().(*net.TCPAddr).Port}
	b.healthy.Store(true)
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(ln)
	t.Cleanup(b.stop)
	return b
}

// serve answers /: the health check; /slow?ms=N: the name at once, then
// "done" N ms later (a long request holding its connection); anything
// else: the name.
func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Backend", b.addr())
	if r.URL.Path == "/" {
		b.checks.Add(1)
		if !b.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, b.name)
		return
	}
	b.hits.Add(1)
	if r.URL.Path != "/slow" {
		io.WriteString(w, b.name)
		return
	}
	ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
	b.slows.Add(1)
	slowsBegun.Add(1)
	io.WriteString(w, b.name+"\n")
	w.(http.Flusher).Flush()
	select {
	case <-time.After(time.Duration(min(ms, 60000)) * time.Millisecond):
		io.WriteString(w, "done\n")
	case <-r.Context().Done():
	}
}

// stop closes the listener and every connection at once.
func (b *backend) stop() { b.srv.Close() }

// pause stops b as an app that shuts down does: its listener closes (new
// connections are refused), requests in progress finish (1 s at most), then
// every connection closes.
func (b *backend) pause() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b.srv.Shutdown(ctx)
	b.srv.Close()
}

// resume listens again at b's address after a pause.
func (b *backend) resume() error {
	ln, err := net.Listen("tcp", b.addr())
	if err != nil {
		return err
	}
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(ln)
	return nil
}

// get sends one request through the frontend on a new connection and
// returns the name of the backend that answered.
func (l *lab) get() (string, error) { return getWith(context.Background(), l.client, l.front) }

// answers sends n requests and counts the answers by backend; it fails
// the test on a failed request.
func (l *lab) answers(n int) map[string]int {
	l.t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		name, err := l.get()
		if err != nil {
			l.t.Fatalf("request %d through %s: %v", i+1, l.front, err)
		}
		got[name]++
	}
	return got
}

// reach sends requests through the frontend until one reaches b, at most
// four turns of the round robin.
func (l *lab) reach(b *backend) {
	l.t.Helper()
	n, hits := 4*len(l.mustServers())+8, b.hits.Load()
	for i := 0; i < n; i++ {
		if _, err := l.get(); err != nil {
			l.t.Fatalf("request through %s: %v", l.front, err)
		}
		if b.hits.Load() > hits {
			return
		}
	}
	l.t.Fatalf("%d requests through %s, none reached %s at %s", n, l.front, b.name, b.addr())
}

// slowReq is a long request on a keep-alive connection of its own,
// keeping the connection busy until the backend ends it.
type slowReq struct {
	conn net.Conn
	done chan error // the request's end: nil when it completed
}

// slow sends GET /slow?ms=ms on a new connection to the frontend; it
// returns at once, the answer read in the background.
func (l *lab) slow(ms int) *slowReq {
	l.t.Helper()
	conn, err := net.DialTimeout("tcp", l.front, 2*time.Second)
	l.must(err)
	l.t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(time.Duration(ms)*time.Millisecond + 20*time.Second))
	fmt.Fprintf(conn, "GET /slow?ms=%d HTTP/1.1\r\nHost: live\r\n\r\n", ms)
	s := &slowReq{conn: conn, done: make(chan error, 1)}
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			s.done <- err
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && (resp.StatusCode != http.StatusOK || !strings.HasSuffix(string(body), "done\n")) {
			err = fmt.Errorf("status %d, answer %q; want 200 and done", resp.StatusCode, body)
		}
		s.done <- err
	}()
	return s
}

// slowTo opens slow requests until one reaches backend b, at most two
// turns of the round robin; it closes the others. (It tells where each
// went from the backends' counts: HAProxy holds the first bytes of an
// unfinished answer back for up to 200 ms.)
func (l *lab) slowTo(b *backend, ms int) *slowReq {
	l.t.Helper()
	n := 4*len(l.mustServers()) + 8
	for i := 0; i < n; i++ {
		all, mine := slowsBegun.Load(), b.slows.Load()
		s := l.slow(ms)
		l.waitFor("the slow request to reach a backend", 5*time.Second, func() error {
			if slowsBegun.Load() == all {
				return errorf("no backend began it")
			}
			return nil
		})
		if b.slows.Load() > mine {
			return s
		}
		s.conn.Close()
	}
	l.t.Fatalf("%d requests through %s, none reached %s", n, l.front, b.name)
	return nil
}

// load is clients sending requests through the frontend in a loop until
// stopped, each on a keep-alive connection of its own (or a new connection
// per request), counting answers and failures.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ok     atomic.Int64
	mu     sync.Mutex
	by     map[string]int
	fails  []string
	first  time.Time // of the failures
	last   time.Time
	failAt []time.Time
	seenAt map[string][2]time.Time // first and last answer from each backend
}

// loadResult is what a load saw.
type loadResult struct {
	ok          int64
	failed      int
	fails       []string // the first ones
	first, last time.Time
	by          map[string]int
}

// startLoad starts workers clients; they stop at stop, after max, or after
// a minute, whichever comes first.
func (l *lab) startLoad(workers int, keepAlive bool, pause time.Duration) *load {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	ld := &load{cancel: cancel, by: map[string]int{}, seenAt: map[string][2]time.Time{}}
	for w := 0; w < workers; w++ {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			defer client.CloseIdleConnections()
			for i := 0; i < 1_000_000 && ctx.Err() == nil; i++ {
				name, err := getWith(ctx, client, l.front)
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					return
				}
				ld.record(name, err, time.Now())
				if pause > 0 {
					time.Sleep(pause)
				}
			}
		}()
	}
	return ld
}

// startRate starts an open-loop load: a request every 1/rate s, each on
// a new connection, whatever the others do (at most 500 at a time), so
// that requests HAProxy holds do not slow the load down. Stopping it
// waits for the requests in flight (10 s at most each). It stops by
// itself after a minute.
func (l *lab) startRate(rate int) *load { return l.startRateFor(rate, time.Minute) }

// startRateFor is startRate stopping by itself after d.
func (l *lab) startRateFor(rate int, d time.Duration) *load {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	ld := &load{cancel: cancel, by: map[string]int{}, seenAt: map[string][2]time.Time{}}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	sem := make(chan struct{}, 500)
	ld.wg.Add(1)
	go func() {
		defer ld.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case sem <- struct{}{}:
			default:
				ld.record("", errors.New("client: 500 requests in flight"), time.Now())
				continue
			}
			ld.wg.Add(1)
			go func(sent time.Time) {
				defer ld.wg.Done()
				defer func() { <-sem }()
				name, err := getWith(context.Background(), client, l.front)
				ld.record(name, err, sent)
			}(time.Now())
		}
	}()
	return ld
}

// record counts an answer from name, now, or a failure of a request sent
// at sent.
func (ld *load) record(name string, err error, sent time.Time) {
	now := time.Now()
	if err == nil {
		ld.ok.Add(1)
	}
	ld.mu.Lock()
	defer ld.mu.Unlock()
	if err != nil {
		ld.fails = append(ld.fails, err.Error())
		ld.failAt = append(ld.failAt, sent)
		if ld.first.IsZero() {
			ld.first = sent
		}
		ld.last = sent
		return
	}
	ld.by[name]++
	seen := ld.seenAt[name]
	if seen[0].IsZero() {
		seen[0] = now
	}
	seen[1] = now
	ld.seenAt[name] = seen
}

// answered returns the times of the first and last answers from name,
// zero if none came.
func (ld *load) answered(name string) (first, last time.Time) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.seenAt[name][0], ld.seenAt[name][1]
}

// waitAnswered waits until ld has had n answers in all.
func (l *lab) waitAnswered(ld *load, n int64) {
	l.t.Helper()
	l.waitFor(fmt.Sprintf("%d answers to the load", n), 10*time.Second, func() error {
		if got := ld.ok.Load(); got < n {
			return errorf("%d answers", got)
		}
		return nil
	})
}

// failedBetween counts the failures of requests sent from a to b.
func (ld *load) failedBetween(a, b time.Time) int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	n := 0
	for _, t := range ld.failAt {
		if !t.Before(a) && !t.After(b) {
			n++
		}
	}
	return n
}

// failures returns every failed request's send time and error, in order.
func (ld *load) failures() ([]time.Time, []string) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return slices.Clone(ld.failAt), slices.Clone(ld.fails)
}

// stop ends the load and returns what it saw.
func (ld *load) stop() loadResult {
	ld.cancel()
	ld.wg.Wait()
	ld.mu.Lock()
	defer ld.mu.Unlock()
	r := loadResult{ok: ld.ok.Load(), failed: len(ld.fails), by: ld.by, first: ld.first, last: ld.last}
	r.fails = ld.fails[:min(len(ld.fails), 5)]
	return r
}

func getWith(ctx context.Context, c *http.Client, front string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+front+"/r", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}
