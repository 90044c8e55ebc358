package rolling

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// Load bounds: loopback only, at most loadMaxTime and loadMaxRequests.
const (
	loadWorkers     = 4
	loadPause       = 5 * time.Millisecond // per worker, between requests
	loadMaxTime     = 10 * time.Minute
	loadMaxRequests = 2_000_000
)

// load is clients sending GET / through the frontend in a loop, a new
// connection per request (each request is routed anew), counting the
// requests of each phase and keeping every failure.
type load struct {
	url   string
	phase atomic.Int32 // the phase requests sent now count in
	sent  atomic.Int64
	quit  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup

	mu    sync.Mutex
	ok    map[int32]int64
	fails []failure
}

// failure is one failed request.
type failure struct {
	phase  int32
	at     time.Time // when it was sent
	reason string
}

func startLoad(url string) *load {
	l := &load{url: url, quit: make(chan struct{}), ok: map[int32]int64{}}
	for i := 0; i < loadWorkers; i++ {
		l.wg.Add(1)
		go l.worker()
	}
	return l
}

func (l *load) worker() {
	defer l.wg.Done()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	deadline := time.Now().Add(loadMaxTime)
	for time.Now().Before(deadline) && l.sent.Add(1) <= loadMaxRequests {
		select {
		case <-l.quit:
			return
		default:
		}
		phase, at := l.phase.Load(), time.Now()
		reason := one(client, l.url)
		l.mu.Lock()
		if reason == "" {
			l.ok[phase]++
		} else {
			l.fails = append(l.fails, failure{phase: phase, at: at, reason: reason})
		}
		l.mu.Unlock()
		time.Sleep(loadPause)
	}
}

// one makes one request and returns "" or why it failed.
func one(client *http.Client, url string) string {
	resp, err := client.Get(url)
	if err != nil {
		return harness.ErrKind(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case err != nil:
		return "body: " + harness.ErrKind(err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Sprintf("status %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	case len(body) == 0:
		return "empty body"
	}
	return ""
}

func (l *load) stop() {
	l.once.Do(func() {
		close(l.quit)
		l.wg.Wait()
	})
}

// tally is what the load saw in one phase.
type tally struct {
	ok, failed int64
	reasons    map[string]int
	fails      []failure
}

func (t tally) String() string {
	keys := make([]string, 0, len(t.reasons))
	for k := range t.reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%q: %d", k, t.reasons[k])
	}
	return fmt.Sprintf("%d requests, %d failed {%s}", t.ok+t.failed, t.failed, strings.Join(keys, ", "))
}

func (l *load) tally(phase int32) tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := tally{ok: l.ok[phase], reasons: map[string]int{}}
	for _, f := range l.fails {
		if f.phase == phase {
			t.failed++
			t.reasons[f.reason]++
			t.fails = append(t.fails, f)
		}
	}
	return t
}
