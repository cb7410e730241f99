//go:build unix

package main

import "syscall"

const canSIGHUP = true

func sendSIGHUP() error { return syscall.Kill(syscall.Getpid(), syscall.SIGHUP) }
