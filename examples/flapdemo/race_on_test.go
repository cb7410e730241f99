//go:build race

package main

// raceEnabled: go-mysql-server v0.20.0 has a data race of its own
// (information_schema.(*InformationSchemaTable).AssignCatalog writes a
// shared table on every concurrent query of information_schema, which
// flapguard's mysqladapter runs at connect to fingerprint its sessions), so
// the whole-demo tests cannot pass under -race. Our own code's tests still
// run under -race.
const raceEnabled = true
