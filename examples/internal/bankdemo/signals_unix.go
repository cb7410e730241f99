//go:build unix

package bankdemo

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// On Unix the toy monitor listens to SIGUSR1 (DOWN) and SIGUSR2 (UP), and
// the flap step sends them to this very process.
var downSignal, upSignal os.Signal = syscall.SIGUSR1, syscall.SIGUSR2

const holdHelp = ", so you can send SIGUSR1 (DOWN) and SIGUSR2 (UP)"

func holdHint() string {
	return fmt.Sprintf(": kill -USR1 %d (DOWN), kill -USR2 %d (UP)", os.Getpid(), os.Getpid())
}

func notifySignals(ch chan<- os.Signal) { signal.Notify(ch, downSignal, upSignal) }

func (m *monitor) raise(sig os.Signal) error { return syscall.Kill(os.Getpid(), sig.(syscall.Signal)) }
