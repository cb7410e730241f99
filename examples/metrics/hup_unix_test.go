//go:build unix

package main

import "syscall"

const canHUP = true

// sendHUP sends this process the SIGHUP that run turns into a pool reset.
func sendHUP() error { return syscall.Kill(syscall.Getpid(), syscall.SIGHUP) }
