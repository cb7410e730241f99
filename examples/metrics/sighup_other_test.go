//go:build !unix

package main

import "errors"

// Windows has no SIGHUP to send to a process.
const canSIGHUP = false

func sendSIGHUP() error { return errors.New("no SIGHUP here") }
