package rolling

import (
	"fmt"
	"sort"
	"strings"
	"sync"
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

// load is clients sending GET / through the frontend in a loop
// (harness.Load), counting the requests of each phase and keeping every
// failure.
type load struct {
	*harness.Load

	mu     sync.Mutex
	phases []phaseStart // in order; before the first, phase 0
	ok     map[int32]int64
	fails  []failure
}

// phaseStart is when requests sent begin to count in phase.
type phaseStart struct {
	at    time.Time
	phase int32
}

// setPhase makes the requests sent from now on count in phase p.
func (l *load) setPhase(p int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phases = append(l.phases, phaseStart{time.Now(), p})
}

// failure is one failed request.
type failure struct {
	phase  int32
	at     time.Time // when it was sent
	reason string
}

func startLoad(url string) *load {
	l := &load{ok: map[int32]int64{}}
	l.Load = harness.StartLoad(harness.LoadSpec{URL: url, Workers: loadWorkers, Pause: loadPause,
		Timeout: 10 * time.Second, MaxTime: loadMaxTime, MaxRequests: loadMaxRequests, Record: l.record})
	return l
}

// record counts a request in the phase it was sent in.
func (l *load) record(at time.Time, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var phase int32
	for _, p := range l.phases {
		if !p.at.After(at) {
			phase = p.phase
		}
	}
	if reason == "" {
		l.ok[phase]++
	} else {
		l.fails = append(l.fails, failure{phase: phase, at: at, reason: reason})
	}
}

func (l *load) stop() { l.Stop() }

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
