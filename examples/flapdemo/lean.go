//go:build !full

package main

import "errors"

// fullBuild: the default build leaves out gonum/plot, go-mysql-server and
// pgx: from empty caches they would take the first build from about 50 to
// about 175 CPU-seconds (go build -debug-trace, 2 cores), and the default
// demo needs none of them. .ci/fresh-demo times the whole first run.
// -plot, -server mysql and -dsn postgres:// say how to get them.
const fullBuild = false

func writePlot(string, result, []*side) error {
	return errors.New("-plot needs a build with -tags full")
}
