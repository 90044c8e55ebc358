package harness

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Load is clients sending GET url in a loop, a new connection per request
// (each one is routed anew), bounded in time and in requests.
type Load struct {
	quit chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	sent atomic.Int64
}

// LoadSpec bounds a Load: Workers clients, each pausing Pause between
// requests, a request failing after Timeout; all stop at Stop, after
// MaxTime, or once MaxRequests (0: no limit) are sent in all.
type LoadSpec struct {
	URL         string
	Workers     int
	Pause       time.Duration
	Timeout     time.Duration
	MaxTime     time.Duration
	MaxRequests int64
	// Record gets each request's send time and how it failed ("" when it
	// got a 200 with a body); it is called from the workers at once.
	Record func(sent time.Time, fail string)
}

// StartLoad starts s.Workers clients.
func StartLoad(s LoadSpec) *Load {
	l := &Load{quit: make(chan struct{})}
	for range s.Workers {
		l.wg.Add(1)
		go l.worker(s)
	}
	return l
}

func (l *Load) worker(s LoadSpec) {
	defer l.wg.Done()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: s.Timeout}
	deadline := time.Now().Add(s.MaxTime)
	for time.Now().Before(deadline) && (s.MaxRequests == 0 || l.sent.Add(1) <= s.MaxRequests) {
		select {
		case <-l.quit:
			return
		default:
		}
		at := time.Now()
		s.Record(at, Request(client, s.URL))
		time.Sleep(s.Pause)
	}
}

// Stop stops the clients and waits for their requests to end.
func (l *Load) Stop() {
	l.once.Do(func() {
		close(l.quit)
		l.wg.Wait()
	})
}

// Request sends one GET url and returns "" for a 200 with a body, or why
// it failed: ErrKind of the error, "status N BODY", "empty body".
func Request(client *http.Client, url string) string {
	resp, err := client.Get(url)
	if err != nil {
		return ErrKind(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case err != nil:
		return "body: " + ErrKind(err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Sprintf("status %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	case len(body) == 0:
		return "empty body"
	}
	return ""
}
