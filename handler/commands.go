package handler

import (
	"context"
	"fmt"
	"os"

	"github.com/rogpeppe/go-internal/diff"
	"github.com/serf-hb/serf-hb/nodestore"
	"github.com/serf-hb/serf-hb/render"
)

// RenderOptions tune Render.
type RenderOptions struct {
	DryRun bool // print the result; touch nothing
	Diff   bool // with DryRun: print a unified diff against the output
	// ExitCode makes a dry run exit ExitDiff (1) when the output would
	// change, as git diff --exit-code does.
	ExitCode bool
	Check    bool // with DryRun: run the check command on the would-be file
	Force    bool // publish past --min-nodes; reload even when the output is unchanged
}

// Render re-renders the output from the registry as it stands. With
// DryRun it prints the file (or the diff) on stdout and touches nothing:
// no lock, no write, no reload. Otherwise it is a transaction with no
// source of changes: check, install, reload.
func Render(ctx context.Context, cfg Config, opt RenderOptions) error {
	cfg.setIO()
	for flag, set := range map[string]bool{"--diff": opt.Diff, "--exit-code": opt.ExitCode, "--with-check": opt.Check} {
		if set && !opt.DryRun {
			return usageError("%s needs --dry-run", flag)
		}
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if argv, _ := cfg.checkArgv("/staged"); opt.Check && argv == nil {
		// Exit 0 here would claim a check that never ran.
		return usageError("--with-check: no check command to run (%s); hint: --check 'haproxy -c -f {}'", cfg.setting("check", cfg.Check))
	}
	if argv, _ := cfg.reloadArgv(); opt.Force && argv == nil && cfg.MasterSocket == "" {
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("--force: nothing reloads %s (%s, no --haproxy-master-socket): it only publishes past --min-nodes", cfg.Output, cfg.setting("reload", cfg.Reload)))
	}
	if opt.DryRun {
		return renderDryRun(ctx, cfg, opt)
	}
	r := start(cfg, "render")
	r.force = opt.Force
	return r.finish(r.transact(ctx, func(st *nodestore.Store) error {
		if opt.Force {
			return r.markReloadDue(st)
		}
		return nil
	}))
}

// renderDryRun prints what a render would write, or its diff against the
// output, and with Check has the check command judge it.
func renderDryRun(ctx context.Context, cfg Config, opt RenderOptions) error {
	st, err := openStore(cfg.NodesDir)
	if err != nil {
		return err
	}
	r := &run{cfg: cfg, rep: newReport("render"), force: opt.Force}
	out, err := r.build(st)
	if err != nil {
		return err
	}
	r.dryRunNote()
	if opt.Check {
		if err := checkCopy(ctx, r, out); err != nil {
			return err
		}
	}
	cur, err := render.Current(cfg.Output)
	if err != nil {
		return fmt.Errorf("read %s: %v", cfg.Output, err)
	}
	changed := string(cur) != string(out)
	if !opt.Diff {
		_, err = cfg.Stdout.Write(out)
	} else if d := diff.Diff(oldLabel(cfg.Output, cur), cur, cfg.Output+" (new)", out); d != nil {
		_, err = cfg.Stdout.Write(d)
	} else {
		fmt.Fprintf(cfg.Stderr, "no changes: %s is up to date\n", cfg.Output)
	}
	if err == nil && changed && opt.ExitCode {
		// The expected answer to the question asked, not an error: the
		// diff (or file) on stdout says it all, as with git diff.
		return reported(ExitDiff)
	}
	return err
}

// checkCopy runs the check command on out, written to a temp file that is
// removed afterwards: the output itself is never touched.
func checkCopy(ctx context.Context, r *run, out []byte) error {
	f, err := os.CreateTemp("", "serf-hb-dry-run-*.cfg")
	if err != nil {
		return fmt.Errorf("stage dry run: %v", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(out)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("stage dry run %s: %v", f.Name(), err)
	}
	argv, err := r.cfg.checkArgv(f.Name())
	if err != nil || argv == nil {
		return err
	}
	if err := runCommand(ctx, argv, r.cfg.CheckTimeout); err != nil {
		return &ExitError{Code: ExitCheck, Err: fmt.Errorf("check the rendered file: %v", err)}
	}
	fmt.Fprintf(r.cfg.Stderr, "check passed: %s\n", commandString(argv))
	return nil
}

// Nodes lists the registry.
func Nodes(cfg Config) ([]nodestore.Node, error) {
	cfg.setIO()
	st, err := openStore(cfg.NodesDir)
	if err != nil {
		return nil, err
	}
	nodes, bad, err := st.List()
	if err != nil {
		return nil, fmt.Errorf("list registry %s: %v", st.Dir(), err)
	}
	for _, b := range bad {
		fmt.Fprintf(cfg.Stderr, "serf-hb: skipped %v\n", b)
	}
	if len(bad) > 0 {
		return nodes, &ExitError{Code: ExitRejected, Err: fmt.Errorf("%d registry entr(ies) are not nodes (named above); the others are listed", len(bad))}
	}
	return nodes, nil
}

// oldLabel names the old side of a dry run's diff: the output, or
// /dev/null when there is none yet (as git labels a new file), so that the
// two sides never read as the same file.
func oldLabel(output string, cur []byte) string {
	if cur == nil {
		return "/dev/null"
	}
	return output
}
