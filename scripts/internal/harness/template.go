package harness

// TemplateHead is the head of the suites' serf-hb templates for the live
// path, down to the health check of backend nodes, whose server lines
// each suite adds: the shape of serf-hb's embedded template (serf-hb
// template) with the runtime API at level admin and a server-state file
// loaded at start, so that a reload keeps health and drain states. HAProxy
// logs only the requests that failed, to its stdout. A suite fills in
// @ADMIN@ (the runtime API's socket), @STATE@ (the server-state file),
// @FRONTEND@ (HOST:PORT) and @BALANCE@ (the algorithm).
const TemplateHead = `global
    log stdout format raw local0
    maxconn 4096
    stats socket @ADMIN@ mode 600 level admin
    server-state-file @STATE@

defaults
    mode http
    log global
    option httplog
    # Failed requests only: a test that sees one reads why here.
    option dontlog-normal
    load-server-state-from-file global
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend localnodes
    bind @FRONTEND@
    default_backend nodes

backend nodes
    balance @BALANCE@
    option httpchk GET /
`
