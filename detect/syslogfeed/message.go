package syslogfeed

import (
	"bytes"
	"fmt"
	"strconv"
)

// The syslog message format: RFC 3164 and RFC 5424 headers.

// syslogMessage strips a syslog header and returns the message part.
// "<PRI>1 …" is RFC 5424: the header and structured data are skipped so
// rules see only MSG. Any other "<PRI>" line is RFC 3164-ish and is kept
// whole after the PRI (routers put their own timestamps there and rules
// match anywhere). A line without "<" is a bare line.
func syslogMessage(line []byte) ([]byte, error) {
	if len(line) == 0 || line[0] != '<' {
		return line, nil
	}
	end := bytes.IndexByte(line[:min(len(line), 5)], '>')
	if end < 2 {
		return nil, fmt.Errorf("%w: bad syslog PRI", ErrMalformed)
	}
	pri, err := strconv.Atoi(string(line[1:end]))
	if err != nil || pri < 0 || pri > 191 || line[1] == '+' || line[1] == '-' {
		return nil, fmt.Errorf("%w: bad syslog PRI %q", ErrMalformed, line[1:end])
	}
	rest := line[end+1:]
	if len(rest) >= 2 && rest[0] >= '1' && rest[0] <= '9' && rest[1] == ' ' {
		return rfc5424Message(rest[2:])
	}
	return rest, nil
}

// rfc5424Message skips TIMESTAMP HOSTNAME APP-NAME PROCID MSGID and the
// STRUCTURED-DATA of an RFC 5424 message (after "VERSION SP").
func rfc5424Message(b []byte) ([]byte, error) {
	for i := 0; i < 5; i++ {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			return nil, fmt.Errorf("%w: RFC 5424 header has too few fields", ErrMalformed)
		}
		b = b[sp+1:]
	}
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("%w: RFC 5424 message lacks STRUCTURED-DATA", ErrMalformed)
	case b[0] == '-':
		b = b[1:]
	case b[0] == '[':
		n, err := skipStructuredData(b)
		if err != nil {
			return nil, err
		}
		b = b[n:]
	default:
		return nil, fmt.Errorf("%w: RFC 5424 STRUCTURED-DATA must be '-' or '['", ErrMalformed)
	}
	if len(b) == 0 {
		return b, nil
	}
	if b[0] != ' ' {
		return nil, fmt.Errorf("%w: RFC 5424 STRUCTURED-DATA not followed by a space", ErrMalformed)
	}
	return bytes.TrimPrefix(b[1:], []byte("\xef\xbb\xbf")), nil
}

// skipStructuredData returns the length of one or more SD-ELEMENTs
// ("[id k=\"v\" …]"); inside quoted values '\' escapes '"', ']' and '\'.
func skipStructuredData(b []byte) (int, error) {
	i := 0
	for i < len(b) && b[i] == '[' {
		i++
		inQuote := false
		for ; i < len(b); i++ {
			c := b[i]
			if inQuote {
				if c == '\\' {
					i++
				} else if c == '"' {
					inQuote = false
				}
				continue
			}
			if c == '"' {
				inQuote = true
			} else if c == ']' {
				break
			}
		}
		if i >= len(b) {
			return 0, fmt.Errorf("%w: RFC 5424 STRUCTURED-DATA not terminated", ErrMalformed)
		}
		i++ // past ']'
	}
	return i, nil
}
