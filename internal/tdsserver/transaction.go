package tdsserver

import "encoding/binary"

// transaction acknowledges BEGIN/COMMIT/ROLLBACK with the ENVCHANGEs
// go-mssqldb tracks (token.go:300); nothing is actually transactional.
func (s *Session) transaction(w *wbuf, p []byte) bool {
	t, err := parseTransMgr(p)
	if err != nil {
		s.log.Warn("tdsserver: closing session", "err", err)
		return false
	}
	var fail *SQLError
	switch {
	case t == tmBegin:
		s.tranID = s.srv.tranSeq.Add(1)
		w.envChangeBytes(envBeginTran, binary.LittleEndian.AppendUint64(nil, s.tranID), nil)
	case (t == tmCommit || t == tmRollback) && s.tranID == 0:
		fail = &SQLError{Number: 3902, State: 1, Class: 16,
			Message: "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION."}
	case t == tmCommit || t == tmRollback:
		typ := envCommitTran
		if t == tmRollback {
			typ = envRollbackTran
		}
		w.envChangeBytes(typ, nil, binary.LittleEndian.AppendUint64(nil, s.tranID))
		s.tranID = 0
	default:
		fail = &SQLError{Number: 50000, State: 1, Class: 16, Message: "tdsserver: unsupported transaction manager request"}
	}
	if fail != nil {
		w.message(tokError, fail, s.srv.name)
		w.done(tokDone, doneError, 0, 0)
	} else {
		w.done(tokDone, doneFinal, 0, 0)
	}
	return s.reply(w.b)
}
