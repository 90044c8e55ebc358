package show

import (
	"fmt"
	"runtime/debug"
)

// Help is the long description printed by serf-hb --help: what a user
// needs beyond the flags.
const Help = `Keep a load balancer's configuration in step with Serf cluster membership.

Run by 'serf agent -event-handler member-join,member-leave,member-failed,member-update,member-reap=serf-hb'.
Every flag can also be set by its environment variable or in the config file. README.md has the details.

Serf variables read: SERF_EVENT (member-join, member-leave, member-failed, member-update, member-reap; user and
query are ignored but for the serf-hb-sync user event), SERF_USER_EVENT, SERF_SELF_NAME, SERF_SELF_ROLE,
SERF_TAG_* (the agent's own tags), SERF_RPC_ADDR and SERF_RPC_AUTH; member lines NAME\tADDR\tROLE\tTAGS on stdin.

Template variables (pongo2; an attribute that does not exist is an error, a missing tag is empty):
  nodes       list of {name, addr, role, tags, port, weight}, sorted by name; port is the port tag
              when it is 1-65535, weight the weight tag when it is 0-256, else empty
              ({{ n.port|default:"3000" }})
  roles       the selected roles (--role), sorted; role is the first one given
  by_role     the nodes grouped by role: {% for n in by_role.web %}, {% for r, l in by_role sorted %}
  self        {name, role, tags} of the node running serf-hb
  addresses   the lab's list of {host, ip}, in the same order as nodes
  haproxy     {socket, state_file}: the runtime API socket (--haproxy-socket) and state file
  filters     nodes|group_by:"zone" -> [{key, nodes}]; x|ident fails unless x can be a HAProxy name;
              x|required fails when x is empty; haproxy.socket must be printed inside {% if haproxy.socket %}
              or with |required

Exit statuses:
  0  done, or nothing to do            4  the template failed; old output kept
  1  registry, lock or install failure 5  --check refused the new file; old output kept
  2  bad flags, config or environment  6  the reload failed (or was refused and rolled back)
  3  some input (stdin lines, members, registry entries) was rejected, or stdin was over 8 MiB and
     the lines after the limit were not read; the rest was applied
  7  --min-nodes kept a role's published nodes (the registry was updated, other changes published)
  render --dry-run --exit-code exits 1 when the output would change.`

// Version describes this build: the stamped release version, or the
// module version and VCS revision from the build info.
func Version(stamped string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return stamped
	}
	v := stamped
	if v == "dev" || v == "" {
		v = bi.Main.Version
	}
	var rev, when, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return fmt.Sprintf("%s (%s)", v, bi.GoVersion)
	}
	return fmt.Sprintf("%s (revision %s%s, %s, %s)", v, rev, dirty, when, bi.GoVersion)
}
