// Command serf-hb keeps a load balancer's configuration in step with a Serf
// cluster's membership.
//
// A serf agent on the load balancer host runs it for every member event:
//
//	serf agent ... -event-handler member-join,member-leave,member-failed,member-update,member-reap=/usr/bin/serf-hb
//
// Each run reads Serf's member lines on stdin, updates the locked per-node
// registry (--nodes-dir), renders a pongo2 template (--template) into
// --output, has the staged file checked (--check), swaps it in atomically
// and reloads the service (--reload), only when the output changed.
//
// This file is wiring only: the CLI, the mapping of flags to
// handler.Config, and the one place the process exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/serf-hb/serf-hb/handler"
)

// defaultConfig is read when it exists; --config names another file.
const defaultConfig = "/etc/serf-hb/config.json"

var version = "dev"

type cli struct {
	NodesDir      string          `name:"nodes-dir" env:"SERF_HB_NODES_DIR" default:"/nodes" placeholder:"DIR"`
	Template      string          `env:"SERF_HB_TEMPLATE" placeholder:"FILE"`
	Output        string          `env:"SERF_HB_OUTPUT" default:"/usr/local/etc/haproxy/haproxy.cfg" placeholder:"FILE"`
	Check         string          `env:"SERF_HB_CHECK" placeholder:"CMDLINE"`
	Reload        string          `env:"SERF_HB_RELOAD" default:"s6-svc -h /var/run/s6/services/ha" placeholder:"CMDLINE"`
	Role          string          `env:"SERF_HB_ROLE" default:"backend"`
	LogFile       string          `name:"log-file" env:"SERF_HB_LOG_FILE" placeholder:"FILE"`
	CheckTimeout  time.Duration   `name:"check-timeout" env:"SERF_HB_CHECK_TIMEOUT" default:"30s"`
	ReloadTimeout time.Duration   `name:"reload-timeout" env:"SERF_HB_RELOAD_TIMEOUT" default:"10s"`
	LockTimeout   time.Duration   `name:"lock-timeout" env:"SERF_HB_LOCK_TIMEOUT" default:"60s"`
	Config        kong.ConfigFlag `env:"SERF_HB_CONFIG" placeholder:"FILE"`
	Version       kong.VersionFlag

	RPCAddr          string        `name:"rpc-addr" env:"SERF_HB_RPC_ADDR,SERF_RPC_ADDR" default:"127.0.0.1:7373" placeholder:"HOST:PORT"`
	RPCAuth          string        `name:"rpc-auth" env:"SERF_HB_RPC_AUTH,SERF_RPC_AUTH" placeholder:"KEY"`
	RPCTimeout       time.Duration `name:"rpc-timeout" env:"SERF_HB_RPC_TIMEOUT" default:"2s"`
	Reconcile        bool          `env:"SERF_HB_RECONCILE"`
	ReconcileTimeout time.Duration `name:"reconcile-timeout" env:"SERF_HB_RECONCILE_TIMEOUT" default:"200ms"`
	Status           []string      `env:"SERF_HB_STATUS" default:"alive" sep:"," placeholder:"STATUS"`

	Handle handleCmd `cmd:"" default:"1"`
	Render renderCmd `cmd:""`
	Nodes  nodesCmd  `cmd:""`
	Sync   syncCmd   `cmd:""`
	Tmpl   tmplCmd   `cmd:"" name:"template"`
}

// help holds the --help texts: flags by name ("render.dry-run" for a
// command's flag), commands as "cmd:NAME". They live here rather than in
// the struct tags because kong.New parses and interpolates every tag on
// every run, help included, and serf-hb runs once per membership event:
// the texts cost each event about 0.4 ms (perf stat of --version, 60 runs
// each way; docs/performance.md). printHelp attaches them when help is
// shown (--help, or a usage error); ${default} in a text is its flag's
// default.
var help = map[string]string{
	"nodes-dir":         "Registry directory: one file per node, first line \"NAME ADDR\" (the lab's layout). It must exist. Default: ${default}.",
	"template":          "pongo2 template to render (default: the embedded HAProxy template; see 'serf-hb template').",
	"output":            "Rendered file, replaced atomically and only when its bytes change. Default: ${default}.",
	"check":             "Validator run on the staged file before it replaces --output; {} is the staged file's path (e.g. 'haproxy -c -f {}'). Split like a shell would, run without one. A failure keeps the old file and skips the reload.",
	"reload":            "Reload command, run after a new file is installed (and on the next run if it failed). Empty: never reload. Use 's6-svc -2 DIR' for HAProxy in master-worker mode. Default: ${default}.",
	"role":              "Only members with this role are registered.",
	"log-file":          "Also append each run's log lines to this file (the lab used /var/log/serf.log).",
	"check-timeout":     "Kill the check command after this long.",
	"reload-timeout":    "Kill the reload command after this long.",
	"lock-timeout":      "Give up waiting for the registry lock after this long.",
	"config":            "JSON file of flag values, keyed by flag name ({\"check\": \"haproxy -c -f {}\"}). " + defaultConfig + " is read when it exists. Flags and environment variables win over it.",
	"version":           "Print the version and exit.",
	"rpc-addr":          "The local serf agent's RPC address (its -rpc-addr), for sync, --reconcile and the serf-hb-sync user event. Default: ${default}.",
	"rpc-auth":          "The agent's RPC auth key (its rpc_auth setting), if it has one.",
	"rpc-timeout":       "Give up on the agent's answer to 'serf-hb sync' after this long (the registry lock is held meanwhile).",
	"reconcile":         "After applying a member event, also sync the registry with the agent's member list (within --reconcile-timeout; a failure is only a warning).",
	"reconcile-timeout": "Bound on the agent query made inside Serf's event loop (--reconcile, the serf-hb-sync user event).",
	"status":            "Member statuses that keep a node registered: alive, plus leaving and/or failed. With failed, a member-failed event keeps the node (HAProxy's checks decide) until it is reaped. Default: ${default}.",
	"cmd:handle":        "Handle one Serf event (the default: what serf agent runs). Reads SERF_EVENT and the member lines on stdin.",
	"cmd:render":        "Re-render --output from the registry as it stands, check, install and reload if it changed.",
	"cmd:nodes":         "List the registry.",
	"cmd:sync":          "Make the registry equal to the agent's members of --role (minus itself), then check, install and reload as an event would. Prints + added, ~ updated, - removed nodes.",
	"cmd:template":      "Print the embedded default template, to start your own from.",
	"render.dry-run":    "Print what would be written to stdout; touch nothing.",
	"render.diff":       "With --dry-run: print a unified diff against the current --output instead.",
	"render.force":      "Reload even when the output is unchanged.",
	"nodes.json":        "Print a JSON array of {name, addr, role, tags}.",
	"sync.dry-run":      "Print the changes on stdout; touch nothing.",
}

// printHelp is kong's help printer, after attaching the help texts.
func printHelp(opts kong.HelpOptions, ctx *kong.Context) error {
	attachHelp(ctx.Model.Node, "")
	return kong.DefaultHelpPrinter(opts, ctx)
}

func attachHelp(n *kong.Node, prefix string) {
	for _, f := range n.Flags {
		if h, ok := help[prefix+f.Name]; ok {
			f.Help = strings.ReplaceAll(h, "${default}", f.Default)
		}
	}
	for _, c := range n.Children {
		if h, ok := help["cmd:"+c.Name]; ok {
			c.Help = h
		}
		attachHelp(c, c.Name+".")
	}
}

func (c *cli) config() handler.Config {
	return handler.Config{
		NodesDir: c.NodesDir, Template: c.Template, Output: c.Output,
		Check: c.Check, Reload: c.Reload, Role: c.Role, LogFile: c.LogFile,
		CheckTimeout: c.CheckTimeout, ReloadTimeout: c.ReloadTimeout, LockTimeout: c.LockTimeout,
		SyncConfig: handler.SyncConfig{
			RPCAddr: c.RPCAddr, RPCAuth: c.RPCAuth, RPCTimeout: c.RPCTimeout,
			Reconcile: c.Reconcile, ReconcileTimeout: c.ReconcileTimeout, Statuses: c.Status,
		},
	}
}

type handleCmd struct{}

func (handleCmd) Run(ctx context.Context, c *cli) error { return handler.Handle(ctx, c.config()) }

type renderCmd struct {
	DryRun bool `name:"dry-run"`
	Diff   bool
	Force  bool
}

func (r renderCmd) Run(ctx context.Context, c *cli) error {
	if r.Diff && !r.DryRun {
		return errors.New("--diff needs --dry-run")
	}
	return handler.Render(ctx, c.config(), handler.RenderOptions{DryRun: r.DryRun, Diff: r.Diff, Force: r.Force})
}

type nodesCmd struct {
	JSON bool `name:"json"`
}

func (n nodesCmd) Run(c *cli) error { return handler.Nodes(c.config(), n.JSON) }

type syncCmd struct {
	DryRun bool `name:"dry-run"`
}

func (s syncCmd) Run(ctx context.Context, c *cli) error {
	return handler.Sync(ctx, c.config(), handler.SyncOptions{DryRun: s.DryRun})
}

type tmplCmd struct{}

func (tmplCmd) Run() error { return handler.PrintDefaultTemplate(os.Stdout) }

// jsonConfig loads a config file: a JSON object whose keys are flag names
// ("nodes-dir"; "nodes_dir" works too). An unknown key is an error, so a
// typo cannot silently fall back to a default.
func jsonConfig(r io.Reader) (kong.Resolver, error) {
	values, err := handler.ParseConfigFile(r)
	if err != nil {
		return nil, err
	}
	return kong.ResolverFunc(func(_ *kong.Context, _ *kong.Path, f *kong.Flag) (any, error) {
		for _, env := range f.Envs {
			if _, set := os.LookupEnv(env); set {
				return nil, nil // the environment wins over the file
			}
		}
		if v, ok := values[f.Name]; ok {
			return v, nil
		}
		return nil, nil
	}), nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var c cli
	k, err := kong.New(&c,
		kong.Name("serf-hb"),
		kong.Description("Keep a load balancer's configuration in step with Serf cluster membership. Run by 'serf agent -event-handler'; see README.md for the exit statuses."),
		kong.Configuration(jsonConfig, defaultConfig),
		kong.Vars{"version": version},
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.UsageOnError(),
		kong.Help(printHelp),
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "serf-hb: error: %v\n", err)
		os.Exit(handler.ExitUsage)
	}
	kctx, err := k.Parse(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "serf-hb: error: %v\n", err)
		os.Exit(handler.ExitUsage)
	}
	err = kctx.Run(ctx)
	stop()
	var ee *handler.ExitError
	switch {
	case err == nil:
		os.Exit(handler.ExitOK)
	case errors.As(err, &ee):
		if !ee.Logged {
			fmt.Fprintf(os.Stderr, "serf-hb: error: %v\n", err)
		}
		os.Exit(ee.Code)
	default:
		fmt.Fprintf(os.Stderr, "serf-hb: error: %v\n", err)
		os.Exit(handler.ExitFailure)
	}
}
