// Command serf-hb keeps a load balancer's configuration in step with a Serf
// cluster's membership: a serf agent runs it for every member event. This
// file is wiring only: the CLI (every flag declared once, with its
// environment variable, default and help), the mapping of flags to
// handler.Config, and the one place the process exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/serf-hb/serf-hb/handler"
	"github.com/serf-hb/serf-hb/internal/settings"
	"github.com/serf-hb/serf-hb/internal/show"
)

// defaultConfig is read when it exists; --config names another file.
const defaultConfig = "/etc/serf-hb/config.json"

var version = "dev" // stamped by release builds (scripts/release.sh)

type cli struct {
	NodesDir string   `name:"nodes-dir" env:"SERF_HB_NODES_DIR" default:"/nodes" placeholder:"DIR" group:"Registry and output" help:"Registry directory: one file per node, first line \"NAME ADDR\" (the lab's layout). It must exist. Default: ${default}."`
	Template string   `env:"SERF_HB_TEMPLATE" placeholder:"FILE" group:"Registry and output" help:"pongo2 template to render (default: the embedded HAProxy template; see 'serf-hb template')."`
	Output   string   `env:"SERF_HB_OUTPUT" default:"/usr/local/etc/haproxy/haproxy.cfg" placeholder:"FILE" group:"Registry and output" help:"Rendered file, replaced atomically and only when its bytes change (a symlink is followed and kept). Default: ${default}."`
	Role     []string `env:"SERF_HB_ROLE" default:"backend" sep:"," group:"Registry and output" help:"Register members with this role tag (case-sensitive); several: api,web; any role: '*'."`
	MinNodes int      `name:"min-nodes" env:"SERF_HB_MIN_NODES" default:"0" placeholder:"N" group:"Registry and output" help:"Floor per role: a run that would take a role's published nodes from N or more to fewer keeps that role's published nodes in the output (a partition on the balancer's side, the last node of a role moved to another); every other change is published, the registry is updated, exit 7. With --role '*' all nodes count together. 'render --force' publishes anyway. 0: off."`
	Status   []string `env:"SERF_HB_STATUS" default:"alive" sep:"," placeholder:"STATUS" group:"Registry and output" help:"Member statuses that keep a node registered: alive, plus leaving and/or failed. With failed, a member-failed event keeps the node (HAProxy's checks decide) until it is reaped."`

	Check          string        `env:"SERF_HB_CHECK" placeholder:"CMDLINE" group:"Check and reload" help:"Validator run on the staged file before it replaces --output; {} is the staged file's path (e.g. 'haproxy -c -f {}'). Split like a shell would, run without one. A failure keeps the old file and skips the reload."`
	Reload         string        `env:"SERF_HB_RELOAD" default:"s6-svc -h /var/run/s6/services/ha" placeholder:"CMDLINE" group:"Check and reload" help:"Reload command, run after a new file is installed (and on the next run if it failed). Empty: never reload. Use 's6-svc -2 DIR' for HAProxy in master-worker mode. Default: ${default}."`
	HAProxySocket  string        `name:"haproxy-socket" env:"SERF_HB_HAPROXY_SOCKET" placeholder:"PATH" group:"Check and reload" help:"HAProxy's runtime API (stats socket at level admin; a path or HOST:PORT): apply changes to server lines live instead of reloading; anything else reloads."`
	HAProxyTimeout time.Duration `name:"haproxy-timeout" env:"SERF_HB_HAPROXY_TIMEOUT" default:"1s" group:"Check and reload" help:"With --haproxy-socket: bound on all of one run's runtime API commands together. A stuck HAProxy costs a run this long at most; the change is then reloaded, and later runs skip the runtime API for 30 s or until a reload. Default: ${default}."`
	DrainTimeout   time.Duration `name:"drain-timeout" env:"SERF_HB_DRAIN_TIMEOUT" hidden:"" group:"Check and reload" help:"No longer used: a removal never waits for a drain (kept so that old handler lines still run; a warning says so)."`
	MasterSocket   string        `name:"haproxy-master-socket" env:"SERF_HB_HAPROXY_MASTER_SOCKET" placeholder:"PATH" group:"Check and reload" help:"HAProxy's master CLI (haproxy -W -S PATH): verify every reload there; a refused one restores OUTPUT.lkg (exit 6). Without --reload, the master CLI reloads."`
	HAProxyLog     string        `name:"haproxy-log" env:"SERF_HB_HAPROXY_LOG" placeholder:"FILE" group:"Check and reload" help:"HAProxy's stderr log (e.g. s6-log's current), read for its startup errors after a refused reload (default: the master's stderr, when a file)."`
	CheckTimeout   time.Duration `name:"check-timeout" env:"SERF_HB_CHECK_TIMEOUT" default:"30s" group:"Check and reload" help:"Kill the check command after this long."`
	ReloadTimeout  time.Duration `name:"reload-timeout" env:"SERF_HB_RELOAD_TIMEOUT" default:"10s" group:"Check and reload" help:"Kill the reload command after this long."`
	LockTimeout    time.Duration `name:"lock-timeout" env:"SERF_HB_LOCK_TIMEOUT" default:"60s" group:"Check and reload" help:"Give up waiting for the registry lock after this long."`

	RPCAddr          string        `name:"rpc-addr" env:"SERF_HB_RPC_ADDR,SERF_RPC_ADDR" default:"127.0.0.1:7373" placeholder:"HOST:PORT" group:"Serf agent" help:"The local serf agent's RPC address (its -rpc-addr), for sync, --reconcile and the serf-hb-sync user event. Default: ${default}."`
	RPCAuth          string        `name:"rpc-auth" env:"SERF_HB_RPC_AUTH,SERF_RPC_AUTH" placeholder:"KEY" group:"Serf agent" help:"The agent's RPC auth key (its rpc_auth setting), if it has one."`
	RPCTimeout       time.Duration `name:"rpc-timeout" env:"SERF_HB_RPC_TIMEOUT" default:"2s" group:"Serf agent" help:"Give up on the agent's answer to 'serf-hb sync' after this long (the registry lock is held meanwhile)."`
	Reconcile        bool          `env:"SERF_HB_RECONCILE" group:"Serf agent" help:"After applying a member event, also sync the registry with the agent's member list (within --reconcile-timeout; a failure is only a warning)."`
	ReconcileTimeout time.Duration `name:"reconcile-timeout" env:"SERF_HB_RECONCILE_TIMEOUT" default:"200ms" group:"Serf agent" help:"Bound on the agent query made inside Serf's event loop (--reconcile, the serf-hb-sync user event)."`

	LogFile   string           `name:"log-file" env:"SERF_HB_LOG_FILE" placeholder:"FILE" group:"Logging" help:"Also append each run's log lines to this file (the lab used /var/log/serf.log)."`
	LogFormat string           `name:"log-format" env:"SERF_HB_LOG_FORMAT" enum:"text,json" default:"text" group:"Logging" help:"Log lines as slog text (key=value) or JSON; one summary line per run either way."`
	Metrics   string           `name:"metrics-file" env:"SERF_HB_METRICS_FILE" placeholder:"FILE" group:"Logging" help:"After each run, write Prometheus metrics (serf_hb_*) to this file atomically, for node_exporter's textfile collector (e.g. /var/lib/node_exporter/textfile/serf-hb.prom)."`
	Config    configFlag       `env:"SERF_HB_CONFIG" placeholder:"FILE" help:"JSON file of flag values, keyed by flag name ({\"check\": \"haproxy -c -f {}\"}). ${config} is read when it exists. Flags and environment variables win over it."`
	Version   kong.VersionFlag `help:"Print the version and exit."`

	Handle handleCmd `cmd:"" default:"1" help:"Handle one Serf event (the default: what serf agent runs). Reads SERF_EVENT and the member lines on stdin."`
	Render renderCmd `cmd:"" help:"Re-render --output from the registry as it stands, check, install and reload if it changed."`
	Nodes  nodesCmd  `cmd:"" help:"List the registry: good entries on stdout, stray files named on stderr (exit 3)."`
	Sync   syncCmd   `cmd:"" help:"Make the registry equal to the agent's members of --role (minus itself), then check, install and reload as an event would. Prints + added, ~ updated, - removed nodes."`
	Tmpl   tmplCmd   `cmd:"" name:"template" help:"Print the embedded default template, to start your own from."`
	Help   helpCmd   `cmd:"" help:"Show help for serf-hb or one of its commands."`

	sources  map[string]string // where each setting came from (handler.Config.Sources)
	warnings []string          // found before the run, logged with it
}

func (c *cli) config() handler.Config {
	return handler.Config{
		NodesDir: c.NodesDir, Template: c.Template, Output: c.Output, Roles: c.Role, Statuses: c.Status, MinNodes: c.MinNodes,
		Check: c.Check, Reload: c.Reload, MasterSocket: c.MasterSocket, HAProxyLog: c.HAProxyLog, HAProxySocket: c.HAProxySocket,
		HAProxyTimeout: c.HAProxyTimeout, DrainTimeout: c.DrainTimeout, CheckTimeout: c.CheckTimeout, ReloadTimeout: c.ReloadTimeout, LockTimeout: c.LockTimeout,
		RPCAddr: c.RPCAddr, RPCAuth: c.RPCAuth, RPCTimeout: c.RPCTimeout, Reconcile: c.Reconcile, ReconcileTimeout: c.ReconcileTimeout,
		LogFile: c.LogFile, LogFormat: c.LogFormat, MetricsFile: c.Metrics,
		Sources: c.sources, Warnings: c.warnings,
	}
}

func (handleCmd) Run(ctx context.Context, c *cli) error { return handler.Handle(ctx, c.config()) }
func (s syncCmd) Run(ctx context.Context, c *cli) error {
	return handler.Sync(ctx, c.config(), handler.SyncOptions(s))
}
func (r renderCmd) Run(ctx context.Context, c *cli) error {
	return handler.Render(ctx, c.config(), handler.RenderOptions(r))
}
func (tmplCmd) Run() error { _, err := os.Stdout.Write(handler.DefaultTemplate()); return err }

type (
	renderCmd struct {
		DryRun   bool `name:"dry-run" help:"Print what would be written to stdout; touch nothing."`
		Diff     bool `help:"With --dry-run: print a unified diff against the current --output instead."`
		ExitCode bool `name:"exit-code" help:"With --dry-run: exit 1 when --output would change (as git diff --exit-code)."`
		Check    bool `name:"with-check" help:"With --dry-run: run --check on the would-be file, without installing it (exit 5 if refused)."`
		Force    bool `help:"Publish past --min-nodes (drop the nodes it holds), and reload even when the output is unchanged."`
	}
	handleCmd struct{}
	tmplCmd   struct{}
	nodesCmd  struct {
		JSON bool `name:"json" help:"Print a JSON array of {name, addr, port, role, tags}."`
	}
	syncCmd struct {
		DryRun bool `name:"dry-run" help:"Print the changes on stdout; touch nothing."`
	}
	helpCmd struct {
		Command []string `arg:"" optional:"" help:"The command to explain."`
	}
)

// Run lists the registry. stdout gets the listing only when there is one:
// a registry that cannot be read prints nothing there (no header, no
// "[]"), so a script reading stdout never takes a failure for an empty
// registry; stray entries (exit 3) still leave the good ones listed.
func (n nodesCmd) Run(c *cli) error {
	nodes, err := handler.Nodes(c.config())
	if err != nil && handler.ExitCode(err) != handler.ExitRejected {
		return err
	}
	return errors.Join(show.Nodes(os.Stdout, nodes, n.JSON), err)
}

// Run prints a command's help; an unknown command is a usage error (exit
// 2), as everywhere else.
func (h helpCmd) Run(k *kong.Kong) error {
	if _, err := k.Parse(append(h.Command, "--help")); err != nil {
		return &handler.ExitError{Code: handler.ExitUsage, Err: err}
	}
	return nil
}

// ownFlags lists, for the commands that use few of the global flags, the
// ones their --help shows: the other ~20 global flags would bury the one
// or two that matter there. serf-hb --help lists them all.
var ownFlags = map[string][]string{
	"template": {},
	"nodes":    {"nodes-dir"},
}

// help prints kong's help, without the global flags a command does not use.
func help(opt kong.HelpOptions, ctx *kong.Context) error {
	cmd := ctx.Selected()
	if cmd == nil {
		return kong.DefaultHelpPrinter(opt, ctx)
	}
	keep, ok := ownFlags[cmd.Name]
	if !ok {
		return kong.DefaultHelpPrinter(opt, ctx)
	}
	var hidden []*kong.Flag
	for _, f := range ctx.Model.Flags {
		if f.Group != nil && !f.Hidden && !slices.Contains(keep, f.Name) {
			f.Hidden = true
			hidden = append(hidden, f)
		}
	}
	defer func() {
		for _, f := range hidden {
			f.Hidden = false
		}
	}()
	return kong.DefaultHelpPrinter(opt, ctx)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	settings.UnsetEmptyEnv()
	var c cli
	k := kong.Must(&c, kong.Name("serf-hb"), kong.Description(show.Help), kong.Configuration(configFile, defaultConfig),
		kong.Vars{"version": show.Version(version), "config": defaultConfig},
		kong.BindTo(ctx, (*context.Context)(nil)), kong.UsageOnError(), kong.Help(help))
	kctx, err := k.Parse(os.Args[1:])
	if err == nil {
		c.sources = sources(kctx)
		c.warnings = settings.UnknownEnv(os.Environ(), envs(k))
		err = kctx.Run(ctx)
	} else {
		var ee *handler.ExitError
		if !errors.As(err, &ee) {
			ee = &handler.ExitError{Code: handler.ExitUsage, Err: err}
		}
		err = ee // kong's "--flag: " before an error that names the file itself
		handler.Early(early(c.LogFile, "log-file", "SERF_HB_LOG_FILE"), c.LogFormat,
			early(c.Metrics, "metrics-file", "SERF_HB_METRICS_FILE"), err)
	}
	if !handler.IsReported(err) {
		fmt.Fprintf(os.Stderr, "serf-hb: error: %v\n", err)
	}
	os.Exit(handler.ExitCode(err))
}

// early returns a setting's value after a failed parse, which may have
// stopped before it was set: the flag's, else its variable's, else a
// config file's.
func early(v, flag, env string) string {
	if v == "" {
		v = os.Getenv(env)
	}
	files := loaded
	if len(files) == 0 {
		// kong reads the environment before the config files: a bad
		// variable stops it before any file is loaded.
		for _, path := range []string{configPath(), defaultConfig} {
			if f, err := os.Open(path); err == nil {
				cf, _ := settings.ReadConfigFile(f)
				f.Close()
				files = append(files, cf)
				break
			}
		}
	}
	for i := len(files) - 1; i >= 0 && v == ""; i-- {
		v = files[i].Raw(flag)
	}
	return v
}

// configPath is the config file named by --config or SERF_HB_CONFIG, read
// from the arguments as they are.
func configPath() string {
	args := os.Args[1:]
	for i, a := range args {
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
		if a == "--config" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv("SERF_HB_CONFIG")
}

// envs maps each global flag to its environment variables.
func envs(k *kong.Kong) map[string][]string {
	m := map[string][]string{}
	for _, f := range k.Model.Flags {
		if len(f.Envs) > 0 {
			m[f.Name] = f.Envs
		}
	}
	return m
}

// sources says where each global flag's value came from, for errors that
// name it (handler.Config.Sources): the command line, else the first of
// its variables that is set, else the last config file that sets it.
func sources(kctx *kong.Context) map[string]string {
	onLine := map[string]bool{}
	for _, p := range kctx.Path {
		if p.Flag != nil && !p.Resolved {
			onLine[p.Flag.Name] = true
		}
	}
	m := map[string]string{}
	for _, f := range kctx.Model.Flags {
		if onLine[f.Name] {
			continue
		}
		for _, e := range f.Envs {
			if _, set := os.LookupEnv(e); set {
				m[f.Name] = "env " + e
				break
			}
		}
		for i := len(loaded) - 1; i >= 0 && m[f.Name] == ""; i-- {
			if loaded[i].Raw(f.Name) != "" || loaded[i].Has(f.Name) {
				m[f.Name] = "file " + loaded[i].Name()
			}
		}
	}
	return m
}

// configFlag is --config: kong.ConfigFlag, with an error that names the
// file and where it was named when it cannot be read.
type configFlag string

func (c configFlag) BeforeResolve(k *kong.Kong, ctx *kong.Context, trace *kong.Path) error {
	path := string(ctx.FlagValue(trace.Flag).(configFlag))
	from := "--config"
	if trace.Flag != nil && os.Getenv("SERF_HB_CONFIG") == path && !slices.ContainsFunc(os.Args[1:], func(a string) bool {
		return a == "--config" || strings.HasPrefix(a, "--config=")
	}) {
		from = "SERF_HB_CONFIG"
	}
	r, err := k.LoadConfig(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return &handler.ExitError{Code: handler.ExitUsage, Err: fmt.Errorf("config file %s (named by %s): %v", path, from, err)}
	}
	ctx.AddResolver(r)
	return nil
}

// configFile loads a config file whose keys are the global flags of
// kong's model (see settings.ConfigFile); the environment wins over it.
func configFile(r io.Reader) (kong.Resolver, error) {
	f, err := settings.ReadConfigFile(r)
	loaded = append(loaded, f)
	return fileResolver{f}, err
}

// loaded are the config files read, in order: the default, then --config.
var loaded []*settings.ConfigFile

type fileResolver struct{ *settings.ConfigFile }

func (f fileResolver) Validate(*kong.Application) error {
	if err := f.Err(); err != nil {
		return &handler.ExitError{Code: handler.ExitUsage, Err: err}
	}
	return nil
}
func (f fileResolver) Resolve(ctx *kong.Context, _ *kong.Path, fl *kong.Flag) (any, error) {
	flags := map[string]reflect.Type{}
	for _, g := range ctx.Model.Flags {
		flags[g.Name] = g.Target.Type()
	}
	v := f.Value(fl.Name, fl.Envs, flags)
	// An enum value is checked here, so that a bad one is blamed on the
	// file, not on a --flag nobody typed.
	if s, ok := v.(string); ok && fl.Enum != "" && !slices.Contains(fl.EnumSlice(), s) {
		return nil, &handler.ExitError{Code: handler.ExitUsage, Err: fmt.Errorf("config file %s: %q: %q is not one of %s", f.Name(), fl.Name, s, strings.Join(fl.EnumSlice(), ", "))}
	}
	return v, nil
}
