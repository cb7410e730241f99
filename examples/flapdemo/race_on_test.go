//go:build race && full

package main

// raceEnabled: go-mysql-server v0.20.0 (-server mysql, -tags full) has a
// data race of its own (information_schema.(*InformationSchemaTable).
// AssignCatalog writes a shared table on every concurrent query of
// information_schema, which flapguard's mysqladapter runs at connect to
// fingerprint its sessions), so TestDemoGMS cannot pass under -race. The
// default TDS backend's demo tests do run under -race.
const raceEnabled = true
