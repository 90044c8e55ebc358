package nodestore

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// metaSeeds are second lines: encode's own output and the shapes the fast
// path must leave to encoding/json.
var metaSeeds = []string{
	`{}`,
	`{"role":"backend"}`,
	`{"role":"backend","tags":{"port":"3000","role":"backend"}}`,
	`{"tags":{"port":"3000"}}`,
	`{"tags":{}}`,
	`{"tags":{},"role":""}`,
	`{"role":"a\"b","tags":{"k":"\u003cv\u003e"}}`,
	`{"role":"caf` + "\xc3\xa9" + `"}`,
	`{"role":"bad` + "\xff" + `"}`,
	`{"Role":"backend"}`,
	`{"role":"a","role":"b"}`,
	`{"tags":{"a":"1"},"tags":{"b":"2"}}`,
	`{"tags":{"a":"1","a":"2"}}`,
	`{"role":null,"tags":null}`,
	`{"role":"x","other":1}`,
	`{ "role" : "x" }`,
	`{"role":"x"} `,
	`{"role":"x"}{}`,
	`{"role":5}`,
	`{"role":"x",}`,
	`{"tags":{"k":5}}`,
	`[]`,
	`"role"`,
	`{"role":"x`,
	"{\"role\":\"a\tb\"}",
}

// TestParseMetaAgreesWithJSON checks the fast path against encoding/json:
// whatever parseMeta accepts, json.Unmarshal reads the same way.
func TestParseMetaAgreesWithJSON(t *testing.T) {
	for _, s := range metaSeeds {
		checkMeta(t, []byte(s))
	}
	// encode's output takes the fast path.
	data, err := encode(benchNode(1))
	if err != nil {
		t.Fatal(err)
	}
	_, line, _ := bytes.Cut(bytes.TrimSpace(data), []byte("\n"))
	if _, ok := parseMeta(line); !ok {
		t.Errorf("parseMeta(%s) refused encode's own output", line)
	}
}

func FuzzParseMeta(f *testing.F) {
	for _, s := range metaSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkMeta(t, b) })
}

func checkMeta(t *testing.T, b []byte) {
	t.Helper()
	var want meta
	wantErr := json.Unmarshal(b, &want)
	if got, ok := parseMeta(b); ok {
		if wantErr != nil {
			t.Fatalf("parseMeta(%q) = %+v, but json.Unmarshal fails: %v", b, got, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseMeta(%q) = %#v, json.Unmarshal gives %#v", b, got, want)
		}
	}
	// With an interner, a second parse serves its strings from it.
	var in interner
	for range 2 {
		if got, ok := parseMetaWith(b, &in); ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("parseMetaWith(%q) = %#v, json.Unmarshal gives %#v", b, got, want)
		}
	}
	got, err := decodeMeta(b, nil)
	if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) && err == nil {
		t.Fatalf("decodeMeta(%q) = %#v, %v; json.Unmarshal gives %#v, %v", b, got, err, want, wantErr)
	}
}
