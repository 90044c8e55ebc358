package harness

import (
	"strconv"
	"strings"
)

// ParseLogfmt splits a slog text line (serf-hb's log) into its key=value
// pairs; a quoted value is unquoted.
func ParseLogfmt(line string) map[string]string {
	r := map[string]string{}
	for i := 0; i < len(line); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		eq := strings.IndexByte(line[i:], '=')
		if eq < 0 {
			break
		}
		key := line[i : i+eq]
		i += eq + 1
		var val string
		if i < len(line) && line[i] == '"' {
			j := i + 1
			for j < len(line) && line[j] != '"' {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(line) {
				j = len(line) - 1
			}
			val, _ = strconv.Unquote(line[i : j+1])
			i = j + 1
		} else {
			j := strings.IndexByte(line[i:], ' ')
			if j < 0 {
				j = len(line) - i
			}
			val = line[i : i+j]
			i += j
		}
		r[key] = val
	}
	return r
}
