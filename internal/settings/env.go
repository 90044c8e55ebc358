package settings

// The SERF_HB_* environment, checked before kong reads it: an empty
// variable means unset (an EnvironmentFile line "SERF_HB_MIN_NODES=" is a
// setting left blank, not the value ""), and a variable that names no flag
// is warned about, naming the flag it most likely meant, as an unknown
// config file key is refused: a typo (SERF_HB_MINNODES=2) must not leave
// a guard off in silence.

import (
	"fmt"
	"os"
	"strings"
)

// envPrefix is the prefix of serf-hb's own variables.
const envPrefix = "SERF_HB_"

// emptyMeansEmpty are the variables whose empty value is a setting of its
// own: SERF_HB_RELOAD= means "never reload" (its help says so), not the
// default reload command.
var emptyMeansEmpty = map[string]bool{"SERF_HB_RELOAD": true}

// UnsetEmptyEnv unsets every empty SERF_HB_* variable but those above.
func UnsetEmptyEnv() {
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, envPrefix) && v == "" && !emptyMeansEmpty[k] {
			os.Unsetenv(k)
		}
	}
}

// UnknownEnv returns a warning for each SERF_HB_* variable in environ
// that is not one of known (flag name to its variables).
func UnknownEnv(environ []string, known map[string][]string) []string {
	names := map[string]bool{}
	for _, envs := range known {
		for _, e := range envs {
			names[e] = true
		}
	}
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, envPrefix) || names[k] {
			continue
		}
		w := fmt.Sprintf("unknown variable %s ignored", k)
		if flag := closestFlag(k, known); flag != "" {
			w += fmt.Sprintf("; hint: did you mean %s (--%s)?", envName(flag, known), flag)
		}
		out = append(out, w)
	}
	return out
}

// envName is the SERF_HB_ variable of flag.
func envName(flag string, known map[string][]string) string {
	for _, e := range known[flag] {
		if strings.HasPrefix(e, envPrefix) {
			return e
		}
	}
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// closestFlag returns the flag whose name is nearest to the variable's,
// ignoring case and separators, when it is near enough to be a typo.
func closestFlag(env string, known map[string][]string) string {
	squash := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	want := squash(strings.TrimPrefix(env, envPrefix))
	best, bestD := "", 0
	for flag := range known {
		d := editDistance(want, squash(flag))
		if best == "" || d < bestD || d == bestD && flag < best {
			best, bestD = flag, d
		}
	}
	if best == "" || bestD > 1+len(want)/3 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
