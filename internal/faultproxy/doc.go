// Package faultproxy is an in-process TCP proxy that injects the faults a
// VPN tunnel produces: a dead path (Drop), flows silently killed by an IPsec
// rekey while new flows work (RekeyBlackhole), and resets (ResetAll).
//
// It uses only the standard library and runs on loopback, so both the unit
// tests of other packages and examples/flapdemo can use it without root.
package faultproxy
