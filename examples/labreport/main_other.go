//go:build !linux

package main

import (
	"fmt"
	"os"
)

// labreport drives the lab (internal/lab), which exists only on Linux.
func main() {
	fmt.Fprintln(os.Stderr, "labreport: the lab needs Linux (network namespaces, nftables, TUN) and root; see CONTRIBUTING.md")
	os.Exit(2)
}
