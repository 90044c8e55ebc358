package harness

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseNode(t *testing.T) {
	tests := []struct {
		name, file, data string
		err              string // "" for a node file
		meta             bool
		role, port       string
	}{
		{name: "serf-hb's layout", file: "web1", data: "web1 127.0.3.1\n{\"role\":\"backend\",\"tags\":{\"port\":\"3000\",\"role\":\"backend\"}}\n",
			meta: true, role: "backend", port: "3000"},
		{name: "no role or tags", file: "web1", data: "web1 127.0.3.1\n{}\n", meta: true},
		{name: "another key in the metadata", file: "web1", data: "web1 127.0.3.1\n{\"role\":\"x\",\"weight\":3}\n", meta: true, role: "x"},
		{name: "the lab's layout", file: "web1", data: "web1 127.0.3.1\n"},
		{name: "IPv6", file: "six", data: "six ::1\n{}\n", meta: true},
		{name: "empty", file: "web1", data: "", err: "no final newline"},
		{name: "truncated first line", file: "web1", data: "web1 127.0", err: "no final newline"},
		{name: "truncated metadata", file: "web1", data: "web1 127.0.3.1\n{\"role\":\"back", err: "no final newline"},
		{name: "metadata cut at a newline", file: "web1", data: "web1 127.0.3.1\n{\"role\":\n", err: "not a JSON object"},
		{name: "metadata not an object", file: "web1", data: "web1 127.0.3.1\n[1]\n", err: "not a JSON object"},
		{name: "metadata of the wrong type", file: "web1", data: "web1 127.0.3.1\n{\"tags\":[1]}\n", err: "not a JSON object"},
		{name: "three lines", file: "web1", data: "web1 127.0.3.1\n{}\n{}\n", err: "more than two lines"},
		{name: "another node's name", file: "web1", data: "web2 127.0.3.1\n", err: "names node web2"},
		{name: "no address", file: "web1", data: "web1\n", err: `not "NAME ADDR"`},
		{name: "two spaces", file: "web1", data: "web1  127.0.3.1\n", err: "address"},
		{name: "host name", file: "web1", data: "web1 example.com\n", err: "address"},
		{name: "zone", file: "web1", data: "web1 fe80::1%eth0\n", err: "address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNode(tt.file, []byte(tt.data))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.file) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, tt.file, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Name != tt.file || n.Meta != tt.meta || n.Role != tt.role || n.Tags["port"] != tt.port || string(n.Data) != tt.data {
				t.Fatalf("got %+v", n)
			}
		})
	}
}

func TestReadRegistry(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"b2":           "b2 127.0.3.2\n{\"role\":\"backend\"}\n",
		"b10":          "b10 127.0.3.10\n",
		".lock":        "reload-pending\n",
		".index":       "anything",
		".b2123456789": "b2 127.0.3.2\n", // a writer's temp file
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := ReadRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Names(), []string{"b10", "b2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if got, want := r.Lines(), []string{"b10 127.0.3.10", "b2 127.0.3.2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Lines() = %q, want %q", got, want)
	}
	if got, want := r.Lab(), []string{"b10"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Lab() = %q, want %q", got, want)
	}
	if got, want := r.Temps, []string{".b2123456789"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Temps = %q, want %q", got, want)
	}

	t.Run("a directory is no node file", func(t *testing.T) {
		if err := os.Mkdir(filepath.Join(dir, "stray"), 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(dir, "stray"))
		if _, err := ReadRegistry(dir); err == nil || !strings.Contains(err.Error(), "stray") {
			t.Fatalf("err = %v, want one naming stray", err)
		}
	})
	t.Run("a broken file fails the read", func(t *testing.T) {
		p := filepath.Join(dir, "b3")
		if err := os.WriteFile(p, []byte("b3 127.0.3."), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(p)
		if _, err := ReadRegistry(dir); err == nil || !strings.Contains(err.Error(), "b3") {
			t.Fatalf("err = %v, want one naming b3", err)
		}
	})
	t.Run("a missing directory", func(t *testing.T) {
		if _, err := ReadRegistry(filepath.Join(dir, "none")); err == nil {
			t.Fatal("no error")
		}
	})
}
