//go:build !unix

package bankdemo

import "os"

// Without SIGUSR1/SIGUSR2 (Windows) the flap step hands the toy monitor
// its "signals" directly, and -hold only queries.
type toySignal string

func (s toySignal) Signal()        {}
func (s toySignal) String() string { return string(s) }

var downSignal, upSignal os.Signal = toySignal("tunnel down"), toySignal("tunnel up")

const holdHelp = " (sending DOWN and UP by signal needs a Unix system)"

func holdHint() string { return "" }

func notifySignals(chan<- os.Signal) {}

func (m *monitor) raise(sig os.Signal) error {
	m.ch <- sig
	return nil
}
