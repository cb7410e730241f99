package syslogfeed

import "testing"

func TestSyslogMessageHeaders(t *testing.T) {
	cases := []struct{ in, want string }{
		{"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8", "Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"},
		{"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8", "'su root' failed for lonvick on /dev/pts/8"},
		{`<165>1 2003-10-11T22:14:15.003Z host app - ID47 [exampleSDID@32473 iut="3" eventSource="Appl\]ication"][x@1 a="\"b\""] ` + "\xef\xbb\xbfmsg here", "msg here"},
		{"<165>1 2003-10-11T22:14:15.003Z host app - ID47 -", ""},
		{"bare line", "bare line"},
		{"<0>x", "x"},
	}
	for _, c := range cases {
		got, err := syslogMessage([]byte(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
