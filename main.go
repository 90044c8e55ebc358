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
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/serf-hb/serf-hb/handler"
)

// defaultConfig is read when it exists; --config names another file.
const defaultConfig = "/etc/serf-hb/config.json"

var version = "dev"

type cli struct {
	NodesDir      string           `name:"nodes-dir" env:"SERF_HB_NODES_DIR" default:"/nodes" placeholder:"DIR" help:"Registry directory: one file per node, first line \"NAME ADDR\" (the lab's layout). It must exist. Default: ${default}."`
	Template      string           `env:"SERF_HB_TEMPLATE" placeholder:"FILE" help:"pongo2 template to render (default: the embedded HAProxy template; see 'serf-hb template')."`
	Output        string           `env:"SERF_HB_OUTPUT" default:"/usr/local/etc/haproxy/haproxy.cfg" placeholder:"FILE" help:"Rendered file, replaced atomically and only when its bytes change. Default: ${default}."`
	Check         string           `env:"SERF_HB_CHECK" placeholder:"CMDLINE" help:"Validator run on the staged file before it replaces --output; {} is the staged file's path (e.g. 'haproxy -c -f {}'). Split like a shell would, run without one. A failure keeps the old file and skips the reload."`
	Reload        string           `env:"SERF_HB_RELOAD" default:"s6-svc -h /var/run/s6/services/ha" placeholder:"CMDLINE" help:"Reload command, run after a new file is installed (and on the next run if it failed). Empty: never reload. Use 's6-svc -2 DIR' for HAProxy in master-worker mode. Default: ${default}."`
	Role          string           `env:"SERF_HB_ROLE" default:"backend" help:"Only members with this role are registered."`
	LogFile       string           `name:"log-file" env:"SERF_HB_LOG_FILE" placeholder:"FILE" help:"Also append each run's log lines to this file (the lab used /var/log/serf.log)."`
	CheckTimeout  time.Duration    `name:"check-timeout" env:"SERF_HB_CHECK_TIMEOUT" default:"30s" help:"Kill the check command after this long."`
	ReloadTimeout time.Duration    `name:"reload-timeout" env:"SERF_HB_RELOAD_TIMEOUT" default:"10s" help:"Kill the reload command after this long."`
	LockTimeout   time.Duration    `name:"lock-timeout" env:"SERF_HB_LOCK_TIMEOUT" default:"60s" help:"Give up waiting for the registry lock after this long."`
	Config        kong.ConfigFlag  `env:"SERF_HB_CONFIG" placeholder:"FILE" help:"JSON file of flag values, keyed by flag name ({\"check\": \"haproxy -c -f {}\"}). ${config_default} is read when it exists. Flags and environment variables win over it."`
	Version       kong.VersionFlag `help:"Print the version and exit."`

	RPCAddr          string        `name:"rpc-addr" env:"SERF_HB_RPC_ADDR,SERF_RPC_ADDR" default:"127.0.0.1:7373" placeholder:"HOST:PORT" help:"The local serf agent's RPC address (its -rpc-addr), for sync, --reconcile and the serf-hb-sync user event. Default: ${default}."`
	RPCAuth          string        `name:"rpc-auth" env:"SERF_HB_RPC_AUTH,SERF_RPC_AUTH" placeholder:"KEY" help:"The agent's RPC auth key (its rpc_auth setting), if it has one."`
	RPCTimeout       time.Duration `name:"rpc-timeout" env:"SERF_HB_RPC_TIMEOUT" default:"2s" help:"Give up on the agent's answer to 'serf-hb sync' after this long (the registry lock is held meanwhile)."`
	Reconcile        bool          `env:"SERF_HB_RECONCILE" help:"After applying a member event, also sync the registry with the agent's member list (within --reconcile-timeout; a failure is only a warning)."`
	ReconcileTimeout time.Duration `name:"reconcile-timeout" env:"SERF_HB_RECONCILE_TIMEOUT" default:"200ms" help:"Bound on the agent query made inside Serf's event loop (--reconcile, the serf-hb-sync user event)."`
	Status           []string      `env:"SERF_HB_STATUS" default:"alive" sep:"," placeholder:"STATUS" help:"Member statuses that keep a node registered: alive, plus leaving and/or failed. With failed, a member-failed event keeps the node (HAProxy's checks decide) until it is reaped. Default: ${default}."`

	Handle handleCmd `cmd:"" default:"1" help:"Handle one Serf event (the default: what serf agent runs). Reads SERF_EVENT and the member lines on stdin."`
	Render renderCmd `cmd:"" help:"Re-render --output from the registry as it stands, check, install and reload if it changed."`
	Nodes  nodesCmd  `cmd:"" help:"List the registry."`
	Sync   syncCmd   `cmd:"" help:"Make the registry equal to the agent's members of --role (minus itself), then check, install and reload as an event would. Prints + added, ~ updated, - removed nodes."`
	Tmpl   tmplCmd   `cmd:"" name:"template" help:"Print the embedded default template, to start your own from."`
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
	DryRun bool `name:"dry-run" help:"Print what would be written to stdout; touch nothing."`
	Diff   bool `help:"With --dry-run: print a unified diff against the current --output instead."`
	Force  bool `help:"Reload even when the output is unchanged."`
}

func (r renderCmd) Run(ctx context.Context, c *cli) error {
	if r.Diff && !r.DryRun {
		return errors.New("--diff needs --dry-run")
	}
	return handler.Render(ctx, c.config(), handler.RenderOptions{DryRun: r.DryRun, Diff: r.Diff, Force: r.Force})
}

type nodesCmd struct {
	JSON bool `name:"json" help:"Print a JSON array of {name, addr, role, tags}."`
}

func (n nodesCmd) Run(c *cli) error { return handler.Nodes(c.config(), n.JSON) }

type syncCmd struct {
	DryRun bool `name:"dry-run" help:"Print the changes on stdout; touch nothing."`
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
		kong.Vars{"version": version, "config_default": defaultConfig},
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.UsageOnError(),
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
