package main

import "fmt"

// backend is a server started in-process when there is no -dsn. The demo
// puts one fault proxy per run in front of it.
type backend struct {
	desc   string                   // for the header line
	addr   string                   // where the proxies forward to
	driver string                   // database/sql driver name of both runs
	dsn    func(addr string) string // a DSN for a client reaching the server at addr
	query  string                   // the workload's request
	args   func() []any
	close  func()
}

// backends are the servers -server can name. "tds" is always here; "mysql"
// only in a build with -tags full (server_gms.go).
var backends = map[string]func() (*backend, error){
	"tds": startTDS,
}

func checkServer(name string) error {
	if _, ok := backends[name]; ok {
		return nil
	}
	if name == "mysql" {
		return needsFull("-server mysql needs go-mysql-server", "-server mysql")
	}
	return fmt.Errorf("unknown -server %q (want tds or mysql)", name)
}

// needsFull says that what was asked for is left out of the default build,
// and the command that builds it in.
func needsFull(what, flags string) error {
	return fmt.Errorf("%s, which the default build leaves out to keep the first run short; run: go run -tags full ./examples/flapdemo %s", what, flags)
}
