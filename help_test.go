package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/serf-hb/serf-hb/internal/show"
)

// TestHelpComplete: every flag and command of the model has a help text,
// with its variables interpolated.
func TestHelpComplete(t *testing.T) {
	var c cli
	k, err := kong.New(&c, kong.Vars{"version": version, "config": defaultConfig})
	if err != nil {
		t.Fatal(err)
	}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			if f.Help == "" {
				t.Errorf("flag --%s of %s has no help text", f.Name, n.Name)
			}
			if strings.Contains(f.Help, "${") {
				t.Errorf("flag --%s: help %q not interpolated", f.Name, f.Help)
			}
			if f.Name != "help" && n == k.Model.Node && f.Group == nil && f.Name != "version" && f.Name != "config" {
				t.Errorf("global flag --%s is in no group: every command's help would list it among its own", f.Name)
			}
		}
		for _, ch := range n.Children {
			if ch.Help == "" {
				t.Errorf("command %s has no help text", ch.Name)
			}
			walk(ch)
		}
	}
	walk(k.Model.Node)
}

// TestEveryFlagReachesConfig: each global flag of the CLI struct, set to a
// value of its own, comes out in handler.Config: no flag is declared and
// then dropped by the mapping.
func TestEveryFlagReachesConfig(t *testing.T) {
	var c cli
	v := reflect.ValueOf(&c).Elem()
	var want []any
	for i := 0; i < v.NumField(); i++ {
		f, sf := v.Field(i), v.Type().Field(i)
		if _, cmd := sf.Tag.Lookup("cmd"); cmd || sf.Name == "Config" || sf.Name == "Version" || !sf.IsExported() {
			continue
		}
		var x any
		switch f.Interface().(type) {
		case string:
			x = "value-of-" + sf.Name
		case []string:
			x = []string{"value-of-" + sf.Name}
		case time.Duration:
			x = time.Duration(i+1) * time.Hour
		case bool:
			x = true
		case int:
			x = 1000 + i
		default:
			t.Fatalf("field %s: type %s not covered by this test", sf.Name, f.Type())
		}
		f.Set(reflect.ValueOf(x))
		want = append(want, x)
	}
	cfg := reflect.ValueOf(c.config())
	var got []any
	for i := 0; i < cfg.NumField(); i++ {
		if f := cfg.Field(i); f.CanInterface() && !f.IsZero() {
			got = append(got, f.Interface())
		}
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			if reflect.DeepEqual(g, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("flag value %v does not reach handler.Config", w)
		}
	}
}

// BenchmarkCLI is what every event pays before its run starts: the CLI
// model (help texts in the struct tags included) and the version string.
func BenchmarkCLI(b *testing.B) {
	b.Run("kong", func(b *testing.B) {
		for b.Loop() {
			var c cli
			kong.Must(&c, kong.Name("serf-hb"), kong.Vars{"version": version, "config": defaultConfig})
		}
	})
	b.Run("version", func(b *testing.B) {
		for b.Loop() {
			show.Version(version)
		}
	})
}
