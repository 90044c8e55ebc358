package main

import (
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// TestHelpComplete: the help texts kept out of the struct tags (see help)
// cover every flag and command of the model, and none is left over from a
// flag that no longer exists.
func TestHelpComplete(t *testing.T) {
	var c cli
	k, err := kong.New(&c, kong.Vars{"version": version})
	if err != nil {
		t.Fatal(err)
	}
	attachHelp(k.Model.Node, "")
	used := map[string]bool{}
	var walk func(n *kong.Node, prefix string)
	walk = func(n *kong.Node, prefix string) {
		for _, f := range n.Flags {
			if f.Name == "help" {
				continue // kong's own
			}
			used[prefix+f.Name] = true
			if f.Help == "" {
				t.Errorf("flag --%s (%q) has no help text", f.Name, prefix+f.Name)
			}
			if strings.Contains(f.Help, "${") {
				t.Errorf("flag --%s: help %q not interpolated", f.Name, f.Help)
			}
		}
		for _, ch := range n.Children {
			used["cmd:"+ch.Name] = true
			if ch.Help == "" {
				t.Errorf("command %s has no help text", ch.Name)
			}
			walk(ch, ch.Name+".")
		}
	}
	walk(k.Model.Node, "")
	for key := range help {
		if !used[key] {
			t.Errorf("help text %q belongs to no flag or command", key)
		}
	}
	if f := flagNamed(k.Model.Node, "nodes-dir"); f == nil || !strings.HasSuffix(f.Help, "Default: /nodes.") {
		t.Errorf("--nodes-dir help does not end with its default: %+v", f)
	}
}

func flagNamed(n *kong.Node, name string) *kong.Flag {
	for _, f := range n.Flags {
		if f.Name == name {
			return f
		}
	}
	return nil
}
