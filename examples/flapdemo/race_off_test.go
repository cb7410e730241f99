//go:build !race && full

package main

const raceEnabled = false
