package serfrpc

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// fakeAgent speaks the agent's side of the RPC protocol on loopback for one
// connection: it checks each request's command and sequence number and
// answers with what answer writes (a header, then maybe a body). After
// answering hangUpAfter, it closes the connection.
type fakeAgent struct {
	t    *testing.T
	ln   net.Listener
	done chan struct{}
	got  []string // commands received, in order

	hangUpAfter string
}

type fakeAnswer func(w *msgp.Writer, seq uint64)

func startFakeAgent(t *testing.T, answers map[string]fakeAnswer) *fakeAgent {
	t.Helper()
	return startFakeAgentHangingUp(t, answers, "")
}

func startFakeAgentHangingUp(t *testing.T, answers map[string]fakeAnswer, hangUpAfter string) *fakeAgent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.2.202:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &fakeAgent{t: t, ln: ln, done: make(chan struct{}), hangUpAfter: hangUpAfter}
	go a.serve(answers)
	t.Cleanup(func() {
		ln.Close()
		<-a.done
	})
	return a
}

func (a *fakeAgent) serve(answers map[string]fakeAnswer) {
	defer close(a.done)
	c, err := a.ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r, w := msgp.NewReader(c), msgp.NewWriter(c)
	for want := uint64(1); ; want++ {
		var cmd string
		var seq uint64
		err := readMap(r, func(key string) (err error) {
			switch key {
			case "Command":
				cmd, err = r.ReadString()
			case "Seq":
				seq, err = r.ReadUint64()
			default:
				a.t.Errorf("request header key %q", key)
				err = r.Skip()
			}
			return err
		})
		if err != nil {
			return // the client hung up
		}
		a.got = append(a.got, cmd)
		if seq != want {
			a.t.Errorf("%s: seq %d, want %d", cmd, seq, want)
		}
		if cmd == "handshake" || cmd == "auth" {
			var body map[string]any
			if err := readMap(r, func(key string) error {
				v, err := r.ReadIntf()
				if body == nil {
					body = map[string]any{}
				}
				body[key] = v
				return err
			}); err != nil {
				a.t.Errorf("%s body: %v", cmd, err)
				return
			}
			if cmd == "handshake" && !reflect.DeepEqual(body, map[string]any{"Version": int64(1)}) {
				a.t.Errorf("handshake body %v", body)
			}
			if cmd == "auth" && body["AuthKey"] != "s3cret" {
				a.t.Errorf("auth body %v", body)
			}
		}
		answer, ok := answers[cmd]
		if !ok {
			answer = okAnswer
		}
		answer(w, seq)
		w.Flush()
		if cmd == a.hangUpAfter {
			return
		}
	}
}

func header(w *msgp.Writer, seq uint64, errMsg string) {
	w.WriteMapHeader(2)
	w.WriteString("Seq")
	w.WriteUint64(seq)
	w.WriteString("Error")
	w.WriteString(errMsg)
}

func okAnswer(w *msgp.Writer, seq uint64) { header(w, seq, "") }

func errAnswer(msg string) fakeAnswer {
	return func(w *msgp.Writer, seq uint64) { header(w, seq, msg) }
}

func statsAnswer(w *msgp.Writer, seq uint64) {
	header(w, seq, "")
	w.WriteMapHeader(2)
	w.WriteString("serf")
	w.WriteMapHeader(1)
	w.WriteString("members")
	w.WriteString("3")
	w.WriteString("agent")
	w.WriteMapHeader(1)
	w.WriteString("name")
	w.WriteString("lb")
}

// membersAnswer answers as Serf's codec does: Addr as bin, every field of
// the member, a member without tags as nil; web2's address comes as str,
// as an older codec wrote raw bytes.
func membersAnswer(w *msgp.Writer, seq uint64) {
	header(w, seq, "")
	type m struct {
		name   string
		addr   []byte
		asStr  bool
		tags   map[string]string
		status string
	}
	ms := []m{
		{"lb", []byte{127, 0, 2, 1}, false, map[string]string{"role": "balancer"}, "alive"},
		{"web1", net.ParseIP("127.0.2.11"), false, map[string]string{"role": "backend", "port": "3000"}, "alive"},
		{"web2", []byte{127, 0, 2, 12}, true, nil, "failed"},
		{"web3", net.ParseIP("fd00::3"), false, map[string]string{}, "left"},
	}
	w.WriteMapHeader(1)
	w.WriteString("Members")
	w.WriteArrayHeader(uint32(len(ms)))
	for _, x := range ms {
		w.WriteMapHeader(11)
		w.WriteString("Name")
		w.WriteString(x.name)
		w.WriteString("Addr")
		if x.asStr {
			w.WriteStringFromBytes(x.addr)
		} else {
			w.WriteBytes(x.addr)
		}
		w.WriteString("Port")
		w.WriteUint16(7946)
		w.WriteString("Tags")
		if x.tags == nil {
			w.WriteNil()
		} else {
			w.WriteMapStrStr(x.tags)
		}
		w.WriteString("Status")
		w.WriteString(x.status)
		for _, k := range []string{"ProtocolMin", "ProtocolMax", "ProtocolCur", "DelegateMin", "DelegateMax", "DelegateCur"} {
			w.WriteString(k)
			w.WriteUint8(2)
		}
	}
}

func TestAgentMembers(t *testing.T) {
	a := startFakeAgent(t, map[string]fakeAnswer{"stats": statsAnswer, "members": membersAnswer})
	ms, err := Client{Addr: a.ln.Addr().String()}.Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Member{
		{Name: "lb", Addr: netip.MustParseAddr("127.0.2.1"), Tags: map[string]string{"role": "balancer"}, Status: "alive", Self: true},
		{Name: "web1", Addr: netip.MustParseAddr("127.0.2.11"), Tags: map[string]string{"role": "backend", "port": "3000"}, Status: "alive"},
		{Name: "web2", Addr: netip.MustParseAddr("127.0.2.12"), Status: "failed"},
		{Name: "web3", Addr: netip.MustParseAddr("fd00::3"), Tags: map[string]string{}, Status: "left"},
	}
	if !reflect.DeepEqual(ms, want) {
		t.Errorf("members:\n got %+v\nwant %+v", ms, want)
	}
	a.ln.Close()
	<-a.done
	if got := strings.Join(a.got, ","); got != "handshake,stats,members" {
		t.Errorf("commands %s", got)
	}
}

func TestAgentAuth(t *testing.T) {
	a := startFakeAgent(t, map[string]fakeAnswer{"stats": statsAnswer, "members": membersAnswer})
	ms, err := Client{Addr: a.ln.Addr().String(), AuthKey: "s3cret"}.Members(context.Background())
	if err != nil || len(ms) != 4 {
		t.Fatalf("members %v, err %v", ms, err)
	}
	a.ln.Close()
	<-a.done
	if got := strings.Join(a.got, ","); got != "handshake,auth,stats,members" {
		t.Errorf("commands %s", got)
	}

	// The agent's refusal is the error, and the hint names the flag.
	a = startFakeAgent(t, map[string]fakeAnswer{"auth": errAnswer("Invalid authentication token")})
	_, err = Client{Addr: a.ln.Addr().String(), AuthKey: "s3cret"}.Members(context.Background())
	if err == nil || err.Error() != "auth: Invalid authentication token" {
		t.Fatalf("err = %v", err)
	}

	// No key given to an agent that wants one: refused at the first call
	// after the handshake, with no body to wait for.
	a = startFakeAgent(t, map[string]fakeAnswer{"stats": errAnswer("Authentication required")})
	_, err = Client{Addr: a.ln.Addr().String()}.Members(context.Background())
	if err == nil || err.Error() != "stats: Authentication required" {
		t.Fatalf("err = %v", err)
	}
}

func TestAgentProtocolErrors(t *testing.T) {
	for name, answers := range map[string]map[string]fakeAnswer{
		"wrong seq": {"handshake": func(w *msgp.Writer, seq uint64) { header(w, seq+5, "") }},
		"no self":   {"stats": func(w *msgp.Writer, seq uint64) { header(w, seq, ""); w.WriteMapHeader(0) }},
		"garbled member": {"stats": statsAnswer, "members": func(w *msgp.Writer, seq uint64) {
			header(w, seq, "")
			w.WriteMapHeader(1)
			w.WriteString("Members")
			w.WriteArrayHeader(1)
			w.WriteMapHeader(1)
			w.WriteString("Addr")
			w.WriteBytes([]byte{1, 2, 3})
		}},
		"hangs up": {"stats": statsAnswer, "members": func(w *msgp.Writer, seq uint64) { w.WriteMapHeader(2) }},
	} {
		t.Run(name, func(t *testing.T) {
			a := startFakeAgentHangingUp(t, answers, "members")
			start := time.Now()
			ms, err := Client{Addr: a.ln.Addr().String()}.Members(context.Background())
			if err == nil {
				t.Fatalf("members %v, no error", ms)
			}
			if time.Since(start) > time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if strings.Contains(err.Error(), "deadline") {
				t.Errorf("err = %v, want the protocol error", err)
			}
			t.Log(err)
		})
	}
}

// TestAgentTimeout: an agent that accepts the connection and never answers
// (wedged, or blocked handing an event to the handler that is asking) costs
// at most the timeout.
func TestAgentTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.2.201:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never answered
		}
	}()
	defer func() {
		ln.Close()
		<-accepted
		for _, c := range conns {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeoutCause(context.Background(), 150*time.Millisecond, errors.New("no answer within 150ms"))
	defer cancel()
	start := time.Now()
	_, err = Client{Addr: ln.Addr().String()}.Members(ctx)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "no answer within 150ms") {
		t.Errorf("err = %v", err)
	}
	if took > time.Second {
		t.Errorf("took %v, want about 150ms", took)
	}

	// Nothing listening: a quick, plain error.
	addr := ln.Addr().String()
	ln.Close()
	<-accepted
	start = time.Now()
	_, err = Client{Addr: addr}.Members(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refused") || time.Since(start) > time.Second {
		t.Errorf("closed port: %v after %v", err, time.Since(start))
	}
}
