// Package faultproxy is an in-process TCP proxy that injects the faults a
// VPN tunnel produces, so tests and examples/flapdemo can reproduce a flap on
// loopback without root, network namespaces or firewall rules.
//
// A Proxy listens on a local address and forwards every accepted connection
// (a "flow") to one target. Its mode can be switched at any time from any
// goroutine:
//
//   - Pass: normal forwarding.
//   - Drop: the tunnel is down. Bytes read from either side of every flow are
//     discarded. New connections are accepted but never reach the target.
//   - Stall: the tunnel is down but packets are only delayed: the proxy stops
//     reading, so bytes wait in socket buffers and are delivered after Pass,
//     the way TCP retransmissions succeed after a short outage.
//
// and two one-shot faults act on the flows that exist at the moment of the
// call:
//
//   - RekeyBlackhole: every existing flow is silently blackholed forever (even
//     after Pass) while new flows work: what an IPsec rekey does to flows whose
//     security associations were torn down on one end only.
//   - ResetAll: every existing flow is closed with a TCP RST on both sides.
//
// # How this differs from a real tunnel
//
// The client's TCP peer is the proxy, not the server, and that changes what a
// client can observe:
//
//   - A dial during Drop succeeds (the local kernel completes the handshake
//     with the proxy); the client then waits for a server that never answers.
//     Through a real dead tunnel the SYNs are lost and the dial itself times
//     out. Either way the client needs a deadline; only the error differs (a
//     read timeout instead of a dial timeout). Such a flow stays dead after
//     Pass, as a connection whose SYNs were lost never comes to life.
//   - Bytes written during Drop are acknowledged by the local kernel and then
//     thrown away, so the client's TCP never retransmits them. A real short
//     outage loses packets that TCP later retransmits; here the stream has a
//     hole and that flow is effectively broken for good. Use Stall for the
//     "short outage the flow survives" case.
//   - A blackholed or dropped flow never sees TCP keepalive or user-timeout
//     failures caused by the path: the proxy's kernel acknowledges everything.
//     Socket-level detection (TCP_USER_TIMEOUT, keepalive) is therefore NOT
//     exercised by this proxy; only application-level deadlines and liveness
//     checks are. Test those socket options in the lab's network namespaces.
//   - A FIN or RST from one side during Drop or on a blackholed flow is not
//     passed on, as it would be lost in a dead tunnel.
//
// The package uses only the standard library.
package faultproxy
