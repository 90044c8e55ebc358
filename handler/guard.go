package handler

import (
	"fmt"
	"strconv"

	"github.com/serf-hb/serf-hb/nodestore"
)

// The guard against publishing an emptied backend list. When the
// balancer's own agent loses the cluster (a partition on its side), Serf
// reports every backend failed, and publishing that is an outage made by
// serf-hb while HAProxy's checks could still reach the backends. So a run
// that would take the published node count from MinNodes or more to fewer
// keeps the output as it is: the registry still records the truth, and
// the first run that brings the count back publishes normally. A first
// start (nothing published yet) always publishes.

// publishedKey is the registry setting holding how many nodes the output
// holds, keyed by output so that several outputs keep their own count.
func (r *run) publishedKey() string { return "published-nodes " + r.absOutput() }

// guard returns an ExitGuarded error when the run must not publish.
func (r *run) guard(st *nodestore.Store) error {
	if r.cfg.MinNodes <= 0 || r.force {
		return nil
	}
	v, set, err := st.Value(r.publishedKey())
	if err != nil {
		return fmt.Errorf("read published node count: %v", err)
	}
	published, err := strconv.Atoi(v)
	if !set || err != nil || published < r.cfg.MinNodes || r.rep.Nodes >= r.cfg.MinNodes {
		return nil
	}
	r.rep.Result, r.rep.Published, r.rep.MinNodes = resGuarded, published, r.cfg.MinNodes
	return &ExitError{Code: ExitGuarded, Err: fmt.Errorf(
		"guarded: publishing %d node(s) would go below --min-nodes %d from the %d published; the registry is updated, %s and HAProxy keep the %d; hint: if this is meant, serf-hb render --force publishes it",
		r.rep.Nodes, r.cfg.MinNodes, published, r.cfg.Output, published)}
}

// published records the node count the output now holds.
func (r *run) published(st *nodestore.Store) error {
	if err := st.SetValue(r.publishedKey(), strconv.Itoa(r.rep.Nodes)); err != nil {
		return fmt.Errorf("record published node count: %v", err)
	}
	return nil
}
