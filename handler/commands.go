package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/rogpeppe/go-internal/diff"
	"github.com/serf-hb/serf-hb/render"
)

// RenderOptions tune Render.
type RenderOptions struct {
	DryRun bool // print the result; touch nothing
	Diff   bool // with DryRun: print a unified diff against the output
	Force  bool // reload even when the output is unchanged
}

// Render re-renders the output from the registry as it stands. With
// DryRun it prints the file (or the diff) on stdout and touches nothing:
// no lock, no write, no command. Otherwise it does what an event does after
// applying its changes: check, install, reload.
func Render(ctx context.Context, cfg Config, opt RenderOptions) error {
	r, closeLog, err := newRun(cfg)
	if err != nil {
		return err
	}
	defer closeLog()
	if err := r.cfg.validate(); err != nil {
		return err
	}
	st, err := openStore(r.cfg.NodesDir)
	if err != nil {
		return err
	}
	if opt.DryRun {
		out, _, err := r.build(st)
		if err != nil {
			return err
		}
		if !opt.Diff {
			_, err = r.cfg.Stdout.Write(out)
			return err
		}
		cur, err := render.Current(r.cfg.Output)
		if err != nil {
			return fmt.Errorf("read %s: %v", r.cfg.Output, err)
		}
		d := diff.Diff(r.cfg.Output, cur, r.cfg.Output+" (new)", out)
		if d == nil {
			fmt.Fprintf(r.cfg.Stderr, "no changes: %s is up to date\n", r.cfg.Output)
			return nil
		}
		_, err = r.cfg.Stdout.Write(d)
		return err
	}
	r.add("event", "render")
	unlock, err := r.lock(ctx, st)
	if err != nil {
		return r.finish("render", err)
	}
	defer unlock()
	if opt.Force {
		if err := st.SetFlag(reloadPending, true); err != nil {
			return r.finish("render", fmt.Errorf("mark reload due: %v", err))
		}
	}
	outcome, err := r.publish(ctx, st)
	r.add("result", outcome)
	return r.finish("render", err)
}

// Nodes prints the registry: a table, or a JSON array with asJSON.
func Nodes(cfg Config, asJSON bool) error {
	cfg.setDefaults()
	st, err := openStore(cfg.NodesDir)
	if err != nil {
		return err
	}
	nodes, bad, err := st.List()
	for _, b := range bad { // TODO(lead): bad entries fail the run, as before List returned them apart
		err = errors.Join(err, b)
	}
	if err != nil {
		return fmt.Errorf("list registry: %v", err)
	}
	if asJSON {
		type node struct {
			Name string            `json:"name"`
			Addr string            `json:"addr"`
			Role string            `json:"role"`
			Tags map[string]string `json:"tags"`
		}
		list := make([]node, len(nodes))
		for i, n := range nodes {
			tags := n.Tags
			if tags == nil {
				tags = map[string]string{}
			}
			list[i] = node{n.Name, n.Addr.String(), n.Role, tags}
		}
		enc := json.NewEncoder(cfg.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(cfg.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDR\tROLE\tTAGS")
	for _, n := range nodes {
		keys := make([]string, 0, len(n.Tags))
		for k := range n.Tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
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

// printable escapes control characters so a tag value cannot break the
// table or the terminal.
func printable(s string) string {
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}

// PrintDefaultTemplate writes the embedded default template to w.
func PrintDefaultTemplate(w io.Writer) error {
	_, err := w.Write(render.DefaultSource())
	return err
}
