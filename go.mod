module github.com/serf-hb/serf-hb

go 1.26.8

require (
	github.com/alecthomas/kong v1.17.0
	github.com/flosch/pongo2/v6 v6.0.0
	github.com/google/renameio/v2 v2.0.2
	github.com/hashicorp/serf v0.11.0
	github.com/kballard/go-shellquote v0.0.0-20180428030007-95032a82bc51
	github.com/rogpeppe/go-internal v1.16.0
)

require (
	github.com/hashicorp/go-immutable-radix v1.3.1 // indirect
	github.com/hashicorp/go-metrics v0.7.0 // indirect
	github.com/hashicorp/go-msgpack/v2 v2.1.5 // indirect
	github.com/hashicorp/golang-lru v1.0.2 // indirect
	github.com/hashicorp/logutils v1.0.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/tools v0.37.0 // indirect
)
