// Package settings reads serf-hb's settings from where an operator writes
// them besides the command line: the JSON config file (checked against the
// flags kong knows, by kind, blaming the file and key) and the SERF_HB_*
// environment (an empty variable is unset; an unknown one is named, with
// the closest flag). With main.go and internal/show it is the CLI's room:
// nothing below handler parses a setting.
package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kinds of config file values, as parseConfigFile checks them.
const (
	kindString   = "string"
	kindBool     = "bool"
	kindInt      = "int"
	kindDuration = "duration"
	kindList     = "list" // comma-separated, or a JSON array of strings
)

// parseConfigFile reads the JSON config file name from r: one object whose
// keys are flag names ("nodes-dir", or "nodes_dir") and whose values are
// strings, numbers or booleans (and arrays of strings for lists). kinds
// maps each flag a file may set to its kind; the caller derives it from
// the CLI's own model, so no second list of flags exists. Unknown and
// duplicate keys are errors, so that a typo never falls back to a default
// silently, and each value is checked against its kind here, so that a bad
// value is blamed on the file and not on a flag. Values come back as the
// strings a flag would take.
func parseConfigFile(name string, r io.Reader, kinds map[string]string) (map[string]string, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("config file %s: %s", name, fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(r)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		what := "not a JSON object"
		if err != nil {
			what += ": " + jsonErr(dec, err)
		}
		return nil, fail("%s; hint: {\"check\": \"haproxy -c -f {}\"}", what)
	}
	out := map[string]string{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fail("%v", jsonErr(dec, err))
		}
		k := t.(string)
		key := strings.ReplaceAll(k, "_", "-")
		kind, known := kinds[key]
		if !known {
			return nil, fail("unknown key(s) %s; known: %s", k, strings.Join(slices.Sorted(maps.Keys(kinds)), ", "))
		}
		if _, dup := out[key]; dup {
			return nil, fail("key %q appears twice", k)
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fail("%q: %v", k, jsonErr(dec, err))
		}
		s, err := configValue(kind, v)
		if err != nil {
			return nil, fail("%q: %v", k, err)
		}
		out[key] = s
	}
	if _, err := dec.Token(); err != nil {
		return nil, fail("%v", jsonErr(dec, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fail("data after the JSON object")
	}
	return out, nil
}

// jsonErr says what a JSON error is and where in the file.
func jsonErr(dec *json.Decoder, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v at byte %d", se, se.Offset)
	}
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return fmt.Sprintf("unexpected end of JSON at byte %d", dec.InputOffset())
	}
	return fmt.Sprintf("%v at byte %d", err, dec.InputOffset())
}

// configValue checks v against kind and returns it as a flag's string.
func configValue(kind string, v any) (string, error) {
	if list, ok := v.([]any); ok && kind == kindList {
		items := make([]string, len(list))
		for i, x := range list {
			s, ok := x.(string)
			if !ok {
				return "", fmt.Errorf("want an array of strings, got %v", x)
			}
			items[i] = s
		}
		return strings.Join(items, ","), nil
	}
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case float64:
		s = strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(v)
	default:
		return "", fmt.Errorf("want a %s, got %s", kind, jsonType(v))
	}
	switch kind {
	case kindDuration:
		if _, err := time.ParseDuration(s); err != nil {
			return "", fmt.Errorf("%q is not a duration; hint: %s", s, durationHint(s))
		}
	case kindBool:
		if _, err := strconv.ParseBool(s); err != nil {
			return "", fmt.Errorf("%q is not a boolean; hint: true or false", s)
		}
	case kindInt:
		if _, err := strconv.Atoi(s); err != nil {
			return "", fmt.Errorf("%q is not a whole number", s)
		}
	case kindList:
		parts := strings.Split(s, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		s = strings.Join(parts, ",")
	}
	return s, nil
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// ConfigFile is a config file read by ReadConfigFile, parsed on first use
// against the kinds of the flags it may set (see parseConfigFile).
type ConfigFile struct {
	name   string
	data   []byte
	values map[string]string
	err    error
}

// ReadConfigFile reads a config file from r (its name is r's, when r is a
// file). It never fails: an unreadable file is an error for Err to report
// when the flags are validated, as a usage error.
func ReadConfigFile(r io.Reader) (*ConfigFile, error) {
	f := &ConfigFile{name: "(config)"}
	if n, ok := r.(interface{ Name() string }); ok {
		f.name = n.Name()
	}
	var err error
	if f.data, err = io.ReadAll(r); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		f.err = fmt.Errorf("read config file %s: %v", f.name, err)
	}
	return f, nil
}

// Value returns the file's value for the flag called name, unless one of
// its environment variables is set: the environment wins over the file.
// flags lists the flags the file may set, with their value types; the
// file is parsed against it on the first call.
// It returns nil when the file does not set the flag, or cannot be parsed
// (Err says why).
func (f *ConfigFile) Value(name string, envs []string, flags map[string]reflect.Type) any {
	if f.values == nil && f.err == nil {
		k := map[string]string{}
		for name, t := range flags {
			if name != "help" && name != "version" && name != "config" {
				k[name] = kindOf(t)
			}
		}
		f.values, f.err = parseConfigFile(f.name, bytes.NewReader(f.data), k)
	}
	for _, env := range envs {
		if _, set := os.LookupEnv(env); set {
			return nil
		}
	}
	if v, ok := f.values[name]; ok {
		return v
	}
	return nil
}

// Name returns the file's name.
func (f *ConfigFile) Name() string { return f.name }

// Has reports whether the file sets the flag (once parsed by Value).
func (f *ConfigFile) Has(name string) bool {
	_, ok := f.values[name]
	return ok
}

// Raw returns the file's value for the flag as a string, read leniently:
// for settings wanted before the file could be checked (where to log an
// error that stopped the parse). "" when not set or not readable.
func (f *ConfigFile) Raw(name string) string {
	if v, ok := f.values[name]; ok {
		return v
	}
	var m map[string]any
	if json.Unmarshal(f.data, &m) != nil {
		return ""
	}
	for k, v := range m {
		if s, ok := v.(string); ok && strings.ReplaceAll(k, "_", "-") == name {
			return s
		}
	}
	return ""
}

// Err returns the error of parsing the file, if any: a usage error.
func (f *ConfigFile) Err() error { return f.err }

// kindOf returns the config file kind of a flag whose value has type t.
func kindOf(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return kindDuration
	case t.Kind() == reflect.Bool:
		return kindBool
	case t.Kind() == reflect.Int:
		return kindInt
	case t.Kind() == reflect.Slice:
		return kindList
	}
	return kindString
}

// durationHint suggests a duration for a value that is not one: the value
// with a unit when it is a bare number ("30" -> "30s"), else an example,
// never a made-up word ("soon" -> "soons").
func durationHint(s string) string {
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return fmt.Sprintf("a number with a unit, e.g. \"%ss\"", s)
	}
	return `a number with a unit, e.g. "30s", "1m30s" or "200ms"`
}
