package render

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"

	"github.com/flosch/pongo2/v6"
)

// The filters serf-hb adds to pongo2's; Execute's doc comment is where
// users read about them.
func init() {
	for name, f := range map[string]pongo2.FilterFunction{
		"group_by": filterGroupBy,
		"ident":    filterIdent,
		"required": filterRequired,
	} {
		if err := pongo2.RegisterFilter(name, f); err != nil {
			panic(err) // a name pongo2 took: caught by every test run
		}
	}
}

// filterGroupBy groups a list of nodes by the value of the tag named by
// param: a list of {key, nodes}, sorted by key, each list in the order of
// the input; nodes without the tag have the key "".
func filterGroupBy(in, param *pongo2.Value) (*pongo2.Value, *pongo2.Error) {
	tag := param.String()
	if tag == "" {
		return nil, filterError("group_by", errors.New(`group_by needs a tag name: nodes|group_by:"zone"`))
	}
	var nodes []pongo2.Context
	switch v := in.Interface().(type) {
	case []pongo2.Context:
		nodes = v
	case nil:
		// by_role.NAME of a role no node has: no groups.
	default:
		return nil, filterError("group_by", fmt.Errorf("group_by groups a list of nodes, not %T", v))
	}
	byKey := map[string][]pongo2.Context{}
	var keys []string
	for _, n := range nodes {
		tags, _ := n["tags"].(tagMap)
		k := tags[tag]
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], n)
	}
	sort.Strings(keys)
	groups := make([]pongo2.Context, len(keys))
	for i, k := range keys {
		groups[i] = pongo2.Context{"key": k, "nodes": byKey[k]}
	}
	return pongo2.AsValue(groups), nil
}

// filterIdent passes a value that HAProxy accepts as a name (of a proxy,
// server or ACL) and fails on any other: role names come from Serf tags,
// and quoting cannot make "a b" a backend name.
func filterIdent(in, _ *pongo2.Value) (*pongo2.Value, *pongo2.Error) {
	s := in.String()
	if !ident(s) {
		return nil, filterError("ident", fmt.Errorf("%s cannot be a HAProxy name: letters, digits, _ - . : only", strconv.Quote(s)))
	}
	return pongo2.AsSafeValue(s), nil
}

// filterRequired passes a value that is not empty and fails the render on
// an empty one (nil, "", an empty list or map): for what the file cannot
// do without, {{ haproxy.socket|required }}. Its optional argument names
// the value for the message: |required:"--haproxy-socket".
func filterRequired(in, param *pongo2.Value) (*pongo2.Value, *pongo2.Error) {
	if !empty(in) {
		return in, nil
	}
	what := "a value is required here"
	if name := param.String(); name != "" {
		what = name + " is required here"
	}
	return nil, filterError("required", fmt.Errorf("%s, and it is empty", what))
}

// empty reports whether v is nil, or a string, list or map with nothing
// in it.
func empty(v *pongo2.Value) bool {
	if v.IsNil() {
		return true
	}
	switch reflect.ValueOf(v.Interface()).Kind() {
	case reflect.String, reflect.Slice, reflect.Array, reflect.Map:
		return v.Len() == 0
	}
	return false
}

// ident reports whether s passes HAProxy's invalid_char() test for names.
func ident(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return s != ""
}

// filterError is how a filter reports: pongo2 adds the line and column.
func filterError(name string, err error) *pongo2.Error {
	return &pongo2.Error{Sender: "filter:" + name, OrigError: err}
}
