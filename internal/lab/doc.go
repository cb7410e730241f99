// Package lab is the VPN lab harness: real database servers behind real
// kernel faults, all inside network namespaces that the lab creates and
// removes itself.
//
// # Topology
//
// New builds three network namespaces joined by veth pairs:
//
//	app  --veth /30--  vpn  --veth /30--  db
//
// The vpn namespace forwards between the two links and owns an nftables
// table ("inet fglab") whose forward chain holds the faults. The app and db
// namespaces only have a route to each other's /30 through vpn, no default
// route, so nothing that happens in the lab can reach the host or any other
// network. Addresses are drawn per run from 10.200.0.0–10.249.255.255.
//
// The test process itself stays in the host namespace. Sockets are opened
// inside a namespace with the thread trick (see [Lab.DialApp]): a goroutine
// locks its OS thread, setns(2)s it into the namespace, opens the socket and
// exits without unlocking, so the runtime discards the tainted thread. A
// socket keeps the namespace it was created in for its whole life.
//
// # Faults
//
// Every fault is an atomic `nft -f` transaction on the vpn namespace's
// forward chain: [Lab.Blackhole], [Lab.Restore], [Lab.Flap],
// [Lab.BeginRekey]/[Lab.EndRekey] (the seed failure: tunnel back, new flows
// work, every flow that existed before the rekey stays silently dropped),
// [Lab.Reset] (RST for TCP) and [Lab.Asymmetric]. [Lab.Faults] reports each
// fault's start and end for charts.
//
// # The WAN
//
// [Lab.SetPath] gives the path a one-way delay, bounded jitter and random
// loss per direction ([PathSpec]); [Lab.ClearPath] takes them away. The
// kernel has no netem (sch_netem), so a helper process in the vpn
// namespace does it: policy routing sends every packet between the veths
// into a TUN device, the helper holds each one for its delay (or drops it)
// and writes it back, and the kernel forwards it on. The helper is the test
// binary itself, re-executed; its loop runs SCHED_FIFO and waits with
// ppoll, so a 20ms delay is 20ms within a fraction of a millisecond on a
// busy machine (emulate.go says why). Faults drop packets before they
// reach the TUN, so every fault combines with the path. The helper dies
// with the test binary (Pdeathsig) and is reaped by ClearPath and teardown.
//
// # Servers
//
// [Lab.StartPostgres] and [Lab.StartMariaDB] run private server instances in
// the db namespace, on private temporary data directories, listening on the
// db address. They never touch the machine's shared services on loopback.
// Admin queries ([Postgres.SessionsFrom], [MariaDB.SessionsFrom]) go over
// [Lab.DialDB], which is inside the db namespace and so bypasses the faults.
//
// # Safety
//
// Every external command the lab runs is an `ip -n <ns> ...` or
// `ip netns exec <ns> ...` on one of its own namespaces; checkArgv refuses
// anything else, so no rule or route can land in the host namespace.
// Teardown is registered with t.Cleanup before anything is created, and New
// first sweeps labs left behind by dead processes (a test binary killed by
// -timeout runs no cleanups): namespace names carry the owner's pid and a
// marker under /run/flapguard-lab records the pid's start time.
//
// The first server start leaves one goroutine running for the life of the
// process ([SpawnerGoroutine]): servers are forked from its locked thread so
// that Pdeathsig kills them if the test binary dies without cleanups. Tests
// using goleak should ignore it with goleak.IgnoreTopFunction.
//
// # Running
//
// The lab needs Linux, root, iproute2 (ip, ss), nftables, setpriv,
// PostgreSQL server binaries under /usr/lib/postgresql/*/bin, mariadbd and
// mariadb-install-db. [Require] skips a test when one is missing, or fails
// it when FLAPGUARD_LAB=require (as CI sets it).
package lab
