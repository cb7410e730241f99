package tdsserver

import (
	"net"
	"regexp"
	"strconv"
	"time"
)

// sys.dm_exec_connections, as far as flapguard's go-mssqldb entry reads it
// (pool/mssql.go: SessionQuery, SessionCheck): a session's id, connect_time
// and client_tcp_port, which together fingerprint one connection, so that
// an orphaned session is killed only while it is still the same one.
//
//	select cast(@@spid as bigint), <fp> from sys.dm_exec_connections c where c.session_id = @@spid
//	select count(*) from sys.dm_exec_connections [c] where [c.]session_id = v [and <fp> = '<text>']
//	    [and [c.]connect_time <= dateadd(millisecond, -<ms>, getdate())]
//
// where <fp> is convert(varchar(30), c.connect_time, 126) + '|' +
// cast(c.client_tcp_port as varchar(10)): the session's start time in
// style 126 (yyyy-mm-ddThh:mi:ss.mmm, UTC here) and the client's port as
// the server sees it.
const fpRE = `convert\s*\(\s*varchar\s*\(\s*30\s*\)\s*,\s*(?:c\.)?connect_time\s*,\s*126\s*\)\s*\+\s*'\|'\s*\+\s*` +
	`cast\s*\(\s*(?:c\.)?client_tcp_port\s+as\s+varchar\s*\(\s*10\s*\)\s*\)`

var (
	reDMVSelf = regexp.MustCompile(`(?is)^select\s+cast\s*\(\s*@@spid\s+as\s+bigint\s*\)\s*,\s*` + fpRE +
		`\s+from\s+sys\.dm_exec_connections(?:\s+c)?\s+where\s+(?:c\.)?session_id\s*=\s*@@spid$`)
	reDMVCount = regexp.MustCompile(`(?is)^select\s+count\s*\(\s*\*\s*\)\s+from\s+sys\.dm_exec_connections(?:\s+c)?\s+where\s+(?:c\.)?session_id\s*=\s*` +
		valueRE + `(?:\s+and\s+` + fpRE + `\s*=\s*'([^']*)')?` +
		`(?:\s+and\s+(?:c\.)?connect_time\s*<=\s*dateadd\s*\(\s*millisecond\s*,\s*-(\d+)\s*,\s*getdate\s*\(\s*\)\s*\))?$`)
)

// fingerprint is <fp> for session s.
func (s *Session) fingerprint() string {
	port := 0
	if a, ok := s.conn.RemoteAddr().(*net.TCPAddr); ok {
		port = a.Port
	}
	return s.started.UTC().Format("2006-01-02T15:04:05.000") + "|" + strconv.Itoa(port)
}

// dmv answers the two statements above; ok is false for anything else.
func (s *Session) dmv(text string, args []arg) (res *Result, ok bool, err error) {
	if reDMVSelf.MatchString(text) {
		return &Result{Columns: []string{"", ""}, Rows: [][]any{{int64(s.spid), s.fingerprint()}}, cmd: cmdSelect}, true, nil
	}
	m := reDMVCount.FindStringSubmatch(text)
	if m == nil {
		return nil, false, nil
	}
	id, err := resolve(m[1], args)
	if err != nil {
		return nil, true, err
	}
	n := int32(0)
	for _, o := range s.srv.liveSessions() {
		if int64(o.spid) == id && (m[2] == "" || m[2] == o.fingerprint()) && (m[3] == "" || startedBefore(o, m[3])) {
			n++
		}
	}
	return &Result{Columns: []string{""}, Rows: [][]any{{n}}, cmd: cmdSelect}, true, nil
}

// startedBefore: o started at least ms milliseconds ago.
func startedBefore(o *Session, ms string) bool {
	n, err := strconv.ParseInt(ms, 10, 64)
	return err == nil && time.Since(o.started) >= time.Duration(n)*time.Millisecond
}
