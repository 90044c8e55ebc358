package serfrpc

import (
	"bytes"
	"io"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// FuzzAnswers feeds arbitrary bytes to the client as the agent's whole
// side of a conversation (handshake, stats and members answers, in one
// stream): the reader must never panic, never allocate beyond what the
// input can describe, and either fail or return members whose fields it
// read.
func FuzzAnswers(f *testing.F) {
	var good bytes.Buffer
	w := msgp.NewWriter(&good)
	okAnswer(w, 1)
	statsAnswer(w, 2)
	membersAnswer(w, 3)
	w.Flush()
	f.Add(good.Bytes())
	f.Add(good.Bytes()[:good.Len()/2])
	f.Add([]byte{0x82, 0xa3, 'S', 'e', 'q', 0x01})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}) // an array header claiming 4G entries
	f.Fuzz(func(t *testing.T, answers []byte) {
		c := &rpcConn{r: msgp.NewReader(bytes.NewReader(answers)), w: msgp.NewWriter(io.Discard)}
		ms, err := agentMembers(c, "")
		if err != nil {
			return
		}
		if len(ms) > len(answers) {
			t.Fatalf("%d members from %d bytes", len(ms), len(answers))
		}
		for _, m := range ms {
			if m.Addr.Is4In6() {
				t.Errorf("member %q: address %v not unmapped", m.Name, m.Addr)
			}
		}
	})
}
