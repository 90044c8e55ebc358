// Package show prints the registry for people (a table) and for programs
// (JSON): the presentation of serf-hb's nodes command.
package show

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/serf-hb/serf-hb/nodestore"
	"github.com/serf-hb/serf-hb/render"
)

// node is one registry entry in the JSON output.
type node struct {
	Name string            `json:"name"`
	Addr string            `json:"addr"`
	Port *int              `json:"port"` // the port tag when it is a port number, else null
	Role string            `json:"role"`
	Tags map[string]string `json:"tags"`
}

// Nodes writes the nodes as JSON (asJSON) or as a table.
func Nodes(w io.Writer, nodes []nodestore.Node, asJSON bool) error {
	if asJSON {
		return JSON(w, nodes)
	}
	return Table(w, nodes)
}

// JSON writes the nodes as an indented JSON array of {name, addr, port,
// role, tags}.
func JSON(w io.Writer, nodes []nodestore.Node) error {
	list := make([]node, len(nodes))
	for i, n := range nodes {
		tags := n.Tags
		if tags == nil {
			tags = map[string]string{}
		}
		list[i] = node{Name: n.Name, Addr: n.Addr.String(), Port: port(tags["port"]), Role: n.Role, Tags: tags}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(list)
}

// Table writes the nodes as an aligned table: NAME ADDR ROLE TAGS.
func Table(w io.Writer, nodes []nodestore.Node) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDR\tROLE\tTAGS")
	for _, n := range nodes {
		keys := slices.Sorted(maps.Keys(n.Tags))
		tags := make([]string, len(keys))
		for i, k := range keys {
			tags[i] = k + "=" + n.Tags[k]
		}
		role := n.Role
		if role == "" {
			role = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.Name, n.Addr, role, printable(strings.Join(tags, ",")))
	}
	return tw.Flush()
}

// port returns the port tag's value when it is a port number.
func port(v string) *int {
	if render.Port(v) == "" {
		return nil
	}
	n, _ := strconv.Atoi(v)
	return &n
}

// printable escapes control characters so a tag value cannot break the
// table or the terminal.
func printable(s string) string {
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}
