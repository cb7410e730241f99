// Package tdsserver is a test double of the SQL Server wire protocol (TDS 7.4),
// not a database. It exists because no SQL Server can run on the machines that
// test flapguard, yet the pool must be tested against the real go-mssqldb
// driver (v1.11.2) over real sockets, including the ways a VPN flap breaks them.
//
// # What it speaks
//
// PRELOGIN (always answered with ENCRYPT_NOT_SUP, so clients must use
// encrypt=disable or leave encryption optional), LOGIN7 with SQL
// authentication (any user and password are accepted; the password is never
// decoded, stored or logged), SQLBatch, RPC (sp_executesql, which go-mssqldb
// uses for every parametrised query, and named procedures through
// Config.Handler), transaction manager requests (BEGIN/COMMIT/ROLLBACK are
// acknowledged with the ENVCHANGE tokens the driver needs; the table store is
// not transactional) and ATTENTION. The RESETCONNECTION status bit that the
// driver sets on a reused connection is acknowledged with ENVCHANGE 18 and
// counted. Replies are split into packets no larger than the packet size the
// client asked for in LOGIN7 (clamped to 512..32767, echoed in ENVCHANGE 4),
// and every packet carries the session's SPID, as SQL Server does.
//
// # Statements
//
// Parsing is by regular expression, case-insensitive, one statement per
// request, an optional trailing ';' allowed. Config.Handler is asked first.
//
//	select 1                               one int column, one row
//	select @@spid                          the session's SPID
//	waitfor delay 'hh:mm[:ss[.mmm]]'       blocks that long, or until ATTENTION, kill or close
//	kill <spid>                            closes that session's socket (FIN)
//	insert into <t> [(id)] values (v)[, (v)...]
//	select count(*) from <t> [where id = v]
//	delete [from] <t> [where id = v]
//	select cast(@@spid as bigint), <fp> from sys.dm_exec_connections c where c.session_id = @@spid
//	select count(*) from sys.dm_exec_connections [c] where [c.]session_id = v [and <fp> = '<text>']
//
// where v is an integer literal or a parameter (@p1, or a sql.Named name) and
// <t> is a table name, optionally bracketed and schema-qualified (the schema is
// ignored). Every table exists and starts empty; tables hold a multiset of
// int64 ids shared by all sessions of one Server (see Server.TableIDs). Rows
// affected are reported in DONE, so Result.RowsAffected works. Anything else
// gets error 102 (class 15, "Incorrect syntax near ..."), a named procedure
// gets 2812 (class 16); neither ends the session. The two
// sys.dm_exec_connections statements are what flapguard's orphan reaping
// sends (dmv.go has <fp>, a session's connect_time and client port).
//
// # Faults
//
// The switches on *Server reproduce what a VPN flap does to a TDS session:
// HangAfterAccept (TCP accepted, nothing ever answered: go-mssqldb issue
// #254), Freeze/Unfreeze (a blackholed flow), CloseSessions (FIN or RST),
// KillSessions (a fatal ERROR token, then FIN) and the KILL statement. Their
// exact semantics are in their doc comments.
//
// # Robustness
//
// Everything read from the network is bounded: packets by their 16-bit length
// and the negotiated packet size, messages by Config.MaxMessageSize, and every
// length inside a message by the bytes actually present. A client that breaks
// the framing or sends a malformed LOGIN7/RPC/batch has its session closed,
// never the server; the fuzz test FuzzSession feeds random bytes after a valid
// PRELOGIN.
package tdsserver
