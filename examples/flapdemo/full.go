//go:build full

package main

import (
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" for the plain run with -dsn postgres://

	_ "github.com/flapguard/flapguard/pool/pgxadapter" // full socket control for "pgx"
)

// fullBuild: built with -tags full, so -plot (gonum/plot), -server mysql
// (go-mysql-server) and -dsn postgres:// (pgx) are in.
const fullBuild = true
