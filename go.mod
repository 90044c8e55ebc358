module github.com/serf-hb/serf-hb

go 1.26.8

require (
	github.com/alecthomas/kong v1.17.0
	github.com/flosch/pongo2/v6 v6.0.0
	github.com/google/renameio/v2 v2.0.2
	github.com/kballard/go-shellquote v0.0.0-20180428030007-95032a82bc51
	github.com/rogpeppe/go-internal v1.16.0
	github.com/tinylib/msgp v1.6.5
	golang.org/x/sys v0.48.0
)

require (
	github.com/philhofer/fwd v1.2.0 // indirect
	golang.org/x/tools v0.37.0 // indirect
)
