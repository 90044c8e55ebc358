package haproxy

// What HAProxy 2.6.12 does with each server keyword on `add server`,
// measured by sending every keyword of configuration.txt section 5.2 to a
// running 2.6.12 (live_test.go keeps the refusals honest).

// keywordArgs is how many words follow each server keyword. `source`
// takes one and may be followed by `usesrc X` and `interface X`.
var keywordArgs = map[string]int{
	"addr": 1, "agent-addr": 1, "agent-inter": 1, "agent-port": 1, "agent-send": 1,
	"alpn": 1, "ca-file": 1, "check-alpn": 1, "check-proto": 1, "check-sni": 1,
	"ciphers": 1, "ciphersuites": 1, "cookie": 1, "crl-file": 1, "crt": 1,
	"downinter": 1, "error-limit": 1, "fall": 1, "fastinter": 1, "id": 1,
	"init-addr": 1, "inter": 1, "log-proto": 1, "max-reuse": 1, "maxconn": 1,
	"maxqueue": 1, "minconn": 1, "namespace": 1, "npn": 1, "observe": 1,
	"on-error": 1, "on-marked-down": 1, "on-marked-up": 1, "pool-low-conn": 1,
	"pool-max-conn": 1, "pool-purge-delay": 1, "port": 1, "proto": 1,
	"proxy-v2-options": 1, "redir": 1, "resolve-net": 1, "resolve-opts": 1,
	"resolve-prefer": 1, "resolvers": 1, "rise": 1, "slowstart": 1, "sni": 1,
	"socks4": 1, "source": 1, "ssl-max-ver": 1, "ssl-min-ver": 1, "tcp-ut": 1,
	"track": 1, "verify": 1, "verifyhost": 1, "weight": 1, "ws": 1,
}

// liveKeywords are the keywords `add server` accepts on 2.6 and that
// behave on a dynamic server as on a server of the file. `weight` and
// `check` are handled apart; `enabled` is never sent (haproxy#2497) and
// `disabled` leaves the new server in maintenance, as in the file.
// `ca-file` and `crl-file` work only with a file HAProxy loaded at start
// (another server or bind uses it); otherwise `add server` answers
// "unable to load" and the caller reloads.
var liveKeywords = map[string]bool{
	"addr": true, "agent-addr": true, "agent-inter": true, "agent-port": true,
	"agent-send": true, "allow-0rtt": true, "alpn": true, "backup": true,
	"ca-file": true, "check-alpn": true, "check-proto": true, "check-send-proxy": true,
	"check-sni": true, "check-ssl": true, "ciphers": true, "ciphersuites": true,
	"crl-file": true, "crt": true, "disabled": true, "downinter": true, "enabled": true,
	"error-limit": true, "fall": true, "fastinter": true, "force-sslv3": true,
	"force-tlsv10": true, "force-tlsv11": true, "force-tlsv12": true, "force-tlsv13": true,
	"id": true, "inter": true, "maxconn": true, "maxqueue": true, "minconn": true,
	"no-backup": true, "no-send-proxy": true, "no-send-proxy-v2": true, "no-ssl-reuse": true,
	"no-sslv3": true, "no-tfo": true, "no-tls-tickets": true, "no-tlsv10": true,
	"no-tlsv11": true, "no-tlsv12": true, "no-tlsv13": true, "npn": true, "observe": true,
	"on-error": true, "on-marked-down": true, "on-marked-up": true, "pool-low-conn": true,
	"pool-max-conn": true, "pool-purge-delay": true, "port": true, "proto": true,
	"proxy-v2-options": true, "rise": true, "send-proxy": true, "send-proxy-v2": true,
	"send-proxy-v2-ssl": true, "send-proxy-v2-ssl-cn": true, "slowstart": true, "sni": true,
	"source": true, "ssl": true, "ssl-max-ver": true, "ssl-min-ver": true, "tfo": true,
	"tls-tickets": true, "verify": true, "verifyhost": true, "ws": true,
}

// refusedKeywords are the keywords 2.6.12 answers "'KW' option is not
// accepted for dynamic server" to.
var refusedKeywords = map[string]bool{
	"cookie": true, "init-addr": true, "redir": true, "resolvers": true,
	"resolve-prefer": true, "resolve-net": true, "resolve-opts": true, "log-proto": true,
	"max-reuse": true, "namespace": true, "no-agent-check": true, "no-check": true,
	"no-check-ssl": true, "no-ssl": true, "non-stick": true, "stick": true, "tcp-ut": true,
	"socks4": true, "ssl-reuse": true, "no-send-proxy-v2-ssl": true,
	"no-send-proxy-v2-ssl-cn": true,
}

// unsafeKeywords are accepted by `add server` but do not give a dynamic
// server what the file gives it: an agent check stays off until `enable
// agent` and may put the server back in rotation on its own during a drain,
// and a dynamic server may not track another dynamic server.
var unsafeKeywords = map[string]string{
	"agent-check": "its agent check would need `enable agent`, and the agent may re-enable a draining server",
	"track":       "a dynamic server cannot track another dynamic server",
}

// keywordSpans splits a server line's keyword words into one slice per
// keyword with its arguments.
func keywordSpans(words []string) [][]string {
	var spans [][]string
	for i := 0; i < len(words); {
		n := spanLen(words, i)
		spans = append(spans, words[i:i+n])
		i += n
	}
	return spans
}

// spanLen is the length of the keyword span starting at words[i].
func spanLen(words []string, i int) int {
	n := 1 + keywordArgs[words[i]]
	if words[i] == "source" {
		for j := i + n; j+1 < len(words) && (words[j] == "usesrc" || words[j] == "interface"); j += 2 {
			n += 2
		}
	}
	return min(n, len(words)-i)
}
