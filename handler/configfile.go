package handler

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ConfigKeys are the keys a config file may hold: the flags that configure
// a run.
var ConfigKeys = []string{
	"nodes-dir", "template", "output", "check", "reload", "role", "log-file",
	"check-timeout", "reload-timeout", "lock-timeout", "rpc-addr", "rpc-auth",
	"rpc-timeout", "reconcile", "reconcile-timeout", "status",
}

// ParseConfigFile reads a JSON config file: one object whose keys are flag
// names ("nodes-dir", or "nodes_dir") and whose values are strings (numbers
// and booleans are accepted too). Unknown keys are an error, so that a typo
// never falls back to a default silently.
func ParseConfigFile(r io.Reader) (map[string]string, error) {
	var raw map[string]any
	dec := json.NewDecoder(r)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("parse config: %v", err)
	}
	known := map[string]bool{}
	for _, k := range ConfigKeys {
		known[k] = true
	}
	out := map[string]string{}
	var unknown []string
	for k, v := range raw {
		key := strings.ReplaceAll(k, "_", "-")
		if !known[key] {
			unknown = append(unknown, k)
			continue
		}
		switch v := v.(type) {
		case string:
			out[key] = v
		case float64, bool:
			out[key] = fmt.Sprint(v)
		default:
			return nil, fmt.Errorf("parse config: %q: want a string, got %T", k, v)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("parse config: unknown key(s) %s; known: %s", strings.Join(unknown, ", "), strings.Join(ConfigKeys, ", "))
	}
	return out, nil
}
