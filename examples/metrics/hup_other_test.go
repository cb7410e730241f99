//go:build !unix

package main

import "errors"

// Windows has no kill(2): the test that needs it is skipped.
const canHUP = false

func sendHUP() error { return errors.New("no SIGHUP on this platform") }
